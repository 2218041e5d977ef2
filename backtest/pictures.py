"""The report's pictures: the equity curve with its drawdown, and price with the strategy's
indicators and the fills marked; `report_charts` is the `Charts` hook `write_report` calls.

Times are labelled in the exchange's time zone (`BacktestConfig.exchange_tz`). A long run's
price chart shows its last `PRICE_WINDOW` bars (the title says so): candles of thousands of
bars each would show neither the entries nor the indicators.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd

from backtest.runner import BacktestResult
from charts import Marker, equity_chart_png, price_chart_png

PRICE_WINDOW = 500  # bars of the price chart: the last ones of a longer run
EQUITY_PNG = "equity.png"
PRICE_PNG = "price.png"


@dataclass(frozen=True, slots=True)
class PriceInputs:
    """What the price chart is drawn from: the bars shown, the indicators aligned to them, the
    fills in them as markers, and the title."""

    bars: pd.DataFrame
    indicators: dict[str, list[float | None]]
    markers: list[Marker]
    title: str


def price_inputs(result: BacktestResult, window: int = PRICE_WINDOW) -> PriceInputs:
    """The last `window` bars of the run (all of them when fewer), with the indicators of those
    bars (if the run recorded them) and the fills that happened in them."""
    n = len(result.data)
    first = max(0, n - window)
    bars = result.data.frame.iloc[first:]
    names = list(dict.fromkeys(name for values in result.indicators[first:] for name in values))
    indicators = {name: [values.get(name) for values in result.indicators[first:]]
                  for name in names} if result.indicators else {}
    markers = [Marker(fill.time, fill.side.value, fill.price)
               for fill, index in zip(result.fills, result.fill_bars, strict=True)
               if index >= first]
    title = f"{result.data.symbol} · {result.config.strategy}"
    if first:
        title += f" · last {n - first:,} of {n:,} bars"
    return PriceInputs(bars, indicators, markers, title)


def equity_series(result: BacktestResult) -> pd.Series:
    """The initial cash at the first bar's start, then the equity at each bar's close, indexed
    by the close's time."""
    index = result.data.frame.index
    closes = index + pd.Timedelta(seconds=result.data.bar_seconds)
    times = closes.insert(0, index[0])
    return pd.Series([result.config.cash, *result.equity.tolist()], index=times, name="equity")


def report_charts(result: BacktestResult, directory: Path) -> list[Path]:
    """Write equity.png and price.png into `directory`; return their paths."""
    tz = ZoneInfo(result.config.exchange_tz)
    equity_path, price_path = directory / EQUITY_PNG, directory / PRICE_PNG
    equity_chart_png(equity_series(result), f"{result.data.symbol} · {result.config.strategy}",
                     tz, equity_path)
    price = price_inputs(result)
    price_chart_png(price.bars, price.indicators, price.markers, tz, price.title, price_path)
    return [equity_path, price_path]
