"""PNG charts from `ChartData`: a symbol's price with indicators and trades, or the equity curve.

Rendering uses matplotlib's Agg canvas on a `Figure` (no pyplot global state). It takes
30-100 ms of CPU and holds the GIL, so a thread would still stall the event loop: `ChartRenderer`
draws in one worker process (spawned on first use), one chart at a time.
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import tzinfo

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from bot.messages.document import mode_tag
from engine.reports import ChartData


def render_png(data: ChartData, tz: tzinfo, mode: str) -> bytes:
    """Draw `data` and return PNG bytes; blocking, `ChartRenderer` runs it in a worker process."""
    if not data.times:
        raise ValueError("no data to chart")
    figure = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    times = [t.astimezone(tz) for t in data.times]
    label = data.symbol or "equity"
    axes.plot(times, data.values, color="black", linewidth=1.2, label=label)
    for name, series in data.indicators.items():
        points = [(t, v) for t, v in zip(times, series, strict=False) if v is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            axes.plot(xs, ys, linewidth=1, label=name)
    for side, marker, color in (("BUY", "^", "tab:green"), ("SELL", "v", "tab:red")):
        marks = [m for m in data.markers if m.side == side]
        if marks:
            axes.scatter(
                [m.time.astimezone(tz) for m in marks],
                [m.price for m in marks],
                marker=marker,
                color=color,
                s=60,
                zorder=3,
                label=side.lower(),
            )
    locator = AutoDateLocator(tz=tz)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=tz))
    axes.set_title(f"{mode_tag(mode)} {label}")
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


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
