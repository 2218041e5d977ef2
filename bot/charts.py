"""/chart's pictures: `ChartData` from the control API drawn by `charts` (candles over trading
sessions, or the equity curve), in DISPLAY_TZ.

Rendering uses matplotlib's Agg canvas on a `Figure` (no pyplot global state). It takes
100-300 ms of CPU and holds the GIL, so a thread would still stall the event loop: `ChartRenderer`
draws in one worker process (spawned on first use), one chart at a time.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import tzinfo

import pandas as pd

from bot.messages.document import mode_tag
from charts import equity_chart_png, price_chart_png
from engine.reports import ChartData


def bars_frame(data: ChartData) -> pd.DataFrame:
    """The symbol's bars as an OHLCV frame on their UTC start times; a bar kept without its
    open, high or low (none today) is drawn flat at its close."""
    closes = list(data.values)

    def column(values: tuple[float, ...]) -> list[float]:
        return list(values) if len(values) == len(closes) else closes

    volumes = list(data.volumes) if len(data.volumes) == len(closes) else [0.0] * len(closes)
    return pd.DataFrame(
        {"open": column(data.opens), "high": column(data.highs), "low": column(data.lows),
         "close": closes, "volume": volumes},
        index=pd.DatetimeIndex(data.times),
    )


def render_png(data: ChartData, tz: tzinfo, mode: str) -> bytes:
    """Draw `data` and return PNG bytes; blocking, `ChartRenderer` runs it in a worker process."""
    if not data.times:
        raise ValueError("no data to chart")
    if data.symbol is None:
        equity = pd.Series(data.values, index=pd.DatetimeIndex(data.times), dtype=float)
        return equity_chart_png(equity, f"{mode_tag(mode)} equity", tz)
    n = len(data.times)
    indicators = {  # aligned on the newest bar: the oldest bars may predate the values kept
        name: ([None] * (n - len(values)) + list(values[-n:]) if values else [None] * n)
        for name, values in data.indicators.items()
    }
    indicators = {name: [float("nan") if v is None else v for v in values]
                  for name, values in indicators.items()}
    return price_chart_png(bars_frame(data), indicators, data.markers, tz,
                           f"{mode_tag(mode)} {data.symbol}")


class ChartBusy(Exception):
    """A chart is already being drawn."""


class ChartRenderer:
    """Draws charts in a one-process pool, one at a time; `close()` ends the process."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._drawing = asyncio.Semaphore(1)

    async def png(self, data: ChartData, tz: tzinfo, mode: str) -> bytes:
        """PNG bytes for `data`; raises ChartBusy if another chart is being drawn."""
        if self._drawing.locked():
            raise ChartBusy
        async with self._drawing:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(1, multiprocessing.get_context("spawn"))
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, render_png, data, tz, mode)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:  # waits for a chart being drawn (well under a second)
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
