"""The price chart: candles over trading sessions placed side by side, volume below,
indicator lines broken at session gaps, and entries and exits marked at their fill price."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator

from charts.png import DOWN, GRID, UP, Decimals, figure_png, new_figure
from charts.sessions import break_at, groups, ns, session_starts, time_ticks, zone_name

# More bars than this and each candle stands for several consecutive bars of one session
# (their open, high, low, close and summed volume): thinner candles would be unreadable.
MAX_CANDLES = 240
INDICATOR_COLOURS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


class Marker(NamedTuple):
    """A fill to mark: its time (tz-aware), side ("BUY" or "SELL") and price."""

    time: datetime
    side: str
    price: float


def _marker(item: Any) -> Marker:
    if hasattr(item, "time"):  # a Fill, a ChartMarker, or anything with these three names
        return Marker(item.time, str(getattr(item.side, "value", item.side)), float(item.price))
    time, side, price = item
    return Marker(time, str(side), float(price))


def _utc_index(bars: pd.DataFrame) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex(bars.index)
    if index.tz is None:
        raise ValueError("bars must be indexed by tz-aware datetimes")
    return index.tz_convert(UTC)


def price_figure(
    bars: pd.DataFrame,
    indicators: Mapping[str, pd.Series | Sequence[float | None]] | None = None,
    markers: Iterable[Any] = (),
    tz: tzinfo = UTC,
    title: str = "",
    max_candles: int = MAX_CANDLES,
) -> Figure:
    """Draw the price chart and return its Figure (for tests to inspect; `figure_png` makes PNG).

    bars: OHLCV bars, oldest first, indexed by tz-aware datetimes (each bar's start), with
        columns `open`, `high`, `low`, `close` and optionally `volume` (no column, or all
        zero or NaN: no volume panel).
    indicators: display name → values aligned to `bars` (a Series on the same index, or a
        sequence of the same length); None or NaN where there is no value yet.
    markers: fills to mark, each a `Marker(time, side, price)`, a (time, side, price) tuple,
        or any object with `time`, `side` and `price` (a Fill); side "BUY" or "SELL". Drawn at
        the fill price on the last bar that started at or before the fill (a fill between
        sessions sits on the session's last bar); fills before the first bar are left out.
    tz: the time zone of the axis labels (the exchange's, or DISPLAY_TZ).
    title: the chart's title.
    max_candles: above this many bars, each candle aggregates consecutive bars.

    The x axis counts bars: sessions sit side by side, nights and weekends take no room.
    """
    if len(bars) == 0:
        raise ValueError("no bars to chart")
    times = _utc_index(bars)
    columns = {str(c).lower(): c for c in bars.columns}
    ohlc = [bars[columns[name]].to_numpy(float) for name in ("open", "high", "low", "close")]
    volume = bars[columns["volume"]].to_numpy(float) if "volume" in columns else None
    has_volume = volume is not None and bool(np.nansum(volume) > 0)
    n = len(bars)
    starts = session_starts(times)

    figure = new_figure(11, 6.2 if has_volume else 5.2)
    if has_volume:
        grid = figure.add_gridspec(2, 1, height_ratios=(4, 1), hspace=0.04)
        price_axes = figure.add_subplot(grid[0])
        volume_axes: Axes | None = figure.add_subplot(grid[1], sharex=price_axes)
    else:
        price_axes, volume_axes = figure.add_subplot(), None

    size = max(1, math.ceil(n / max_candles))
    firsts = groups(n, starts, size)
    _draw_candles(price_axes, volume_axes, firsts, n, ohlc, volume)
    for number, (name, values) in enumerate((indicators or {}).items()):
        series = pd.Series(values, dtype=float) if not isinstance(values, pd.Series) else values
        y = pd.to_numeric(series, errors="coerce").to_numpy(float)
        if len(y) != n:
            raise ValueError(f"indicator {name} has {len(y)} values for {n} bars")
        x, y = break_at(starts, y)
        price_axes.plot(x, y, color=INDICATOR_COLOURS[number % len(INDICATOR_COLOURS)],
                        linewidth=1.3, label=name, gid=f"indicator:{name}")
    _draw_markers(price_axes, times, [_marker(m) for m in markers])

    bottom = volume_axes or price_axes
    for axes in filter(None, (price_axes, volume_axes)):
        for start in starts[1:]:
            axes.axvline(start - 0.5, color="#b0b0b0", linewidth=0.8, linestyle=(0, (4, 3)),
                         zorder=0, gid="session-break")
        axes.grid(color=GRID, linewidth=0.7)
        axes.set_axisbelow(True)
        axes.yaxis.tick_right()
        axes.yaxis.set_label_position("right")
        axes.set_xlim(-0.5 - n * 0.01, n - 0.5 + n * 0.02)
        for side in ("top", "left"):
            axes.spines[side].set_visible(False)
    price_axes.yaxis.set_major_formatter(Decimals())
    price_axes.yaxis.set_major_locator(MaxNLocator(8))
    ticks = time_ticks(times, tz)
    bottom.xaxis.set_major_locator(FixedLocator([index for index, _ in ticks]))
    bottom.xaxis.set_major_formatter(FuncFormatter(_labeller(dict(ticks))))
    bottom.set_xlabel(f"time ({zone_name(tz)})", fontsize="small", color="#555555")
    if volume_axes is not None:
        price_axes.tick_params(labelbottom=False)
        volume_axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _volume(v)))
        volume_axes.yaxis.set_major_locator(MaxNLocator(3))
        volume_axes.set_ylabel("volume", fontsize="small", color="#555555")

    last = ohlc[3][-1]
    price_axes.axhline(last, color="#555555", linewidth=0.7, linestyle=":", zorder=1)
    heading = title + (f"   (each candle: {size} bars)" if size > 1 else "")
    price_axes.set_title(heading, loc="left", fontsize="medium", fontweight="bold")
    price_axes.set_title(f"last {last:,.2f}", loc="right", fontsize="medium")
    if price_axes.get_legend_handles_labels()[0]:
        price_axes.legend(loc="upper left", fontsize="small", framealpha=0.85)
    figure.subplots_adjust(left=0.05, right=0.92, top=0.93, bottom=0.1 if has_volume else 0.12)
    return figure


def price_chart_png(
    bars: pd.DataFrame,
    indicators: Mapping[str, pd.Series | Sequence[float | None]] | None = None,
    markers: Iterable[Any] = (),
    tz: tzinfo = UTC,
    title: str = "",
    path: str | Path | None = None,
) -> bytes:
    """The price chart as PNG bytes (also written to `path` if given); see `price_figure`."""
    return figure_png(price_figure(bars, indicators, markers, tz, title), path)


def _draw_candles(
    price_axes: Axes,
    volume_axes: Axes | None,
    firsts: np.ndarray,
    n: int,
    ohlc: list[np.ndarray],
    volume: np.ndarray | None,
) -> None:
    opens, highs, lows, closes = ohlc
    lasts = np.append(firsts[1:], n) - 1
    o, c = opens[firsts], closes[lasts]
    h, low = np.fmax.reduceat(highs, firsts), np.fmin.reduceat(lows, firsts)
    centres = (firsts + lasts) / 2
    half = 0.36 * (lasts - firsts + 1)
    colours = np.where(c >= o, UP, DOWN)
    wicks = LineCollection(
        [((x, lo), (x, hi)) for x, lo, hi in zip(centres, low, h, strict=True)],
        colors=colours, linewidths=0.9, zorder=2, gid="wicks",
    )
    bottom, top = np.minimum(o, c), np.maximum(o, c)
    bodies = PolyCollection(
        [((x - w, b), (x + w, b), (x + w, t), (x - w, t))
         for x, w, b, t in zip(centres, half, bottom, top, strict=True)],
        facecolors=colours, edgecolors=colours, linewidths=0.6, zorder=3, gid="candles",
    )
    price_axes.add_collection(wicks)
    price_axes.add_collection(bodies)
    low_all, high_all = np.nanmin(low), np.nanmax(h)
    pad = (high_all - low_all) * 0.05 or abs(high_all) * 0.01 or 1.0
    price_axes.set_ylim(low_all - pad, high_all + pad)
    if volume_axes is not None and volume is not None:
        summed = np.add.reduceat(np.nan_to_num(volume), firsts)
        volume_axes.bar(centres, summed, width=2 * half, color=colours, alpha=0.55,
                        linewidth=0, gid="volume")
        volume_axes.set_ylim(0, summed.max() * 1.1)


def _draw_markers(axes: Axes, times: pd.DatetimeIndex, markers: list[Marker]) -> None:
    if not markers:
        return
    stamps = pd.DatetimeIndex([pd.Timestamp(m.time) for m in markers]).tz_convert(UTC)
    where = np.searchsorted(ns(times), ns(stamps), side="right") - 1
    for side, shape, colour, label in (("BUY", "^", "#0a8f3c", "buy"),
                                       ("SELL", "v", "#c62828", "sell")):
        chosen = [(i, m.price) for i, m in zip(where, markers, strict=True)
                  if i >= 0 and m.side.upper() == side]
        if chosen:
            x, y = zip(*chosen, strict=True)
            axes.scatter(x, y, marker=shape, s=90, color=colour, edgecolors="black",
                         linewidths=0.7, zorder=5, label=label, gid=f"markers:{side}")


def _labeller(labels: dict[int, str]):
    return lambda value, _: labels.get(round(float(value)), "")


def _volume(value: float) -> str:
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.0f}"
