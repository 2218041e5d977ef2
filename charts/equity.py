"""The equity chart: the equity curve with its drawdown shaded, and the drawdown in percent
below it; money written as money, never with an offset or in scientific notation."""

from __future__ import annotations

from datetime import UTC, tzinfo
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from charts.png import DOWN, GRID, Decimals, figure_png, new_figure
from charts.sessions import zone_name

LINE = "#1f4e79"
# Past this many points the curve is thinned (a picture 11 inches wide shows no more, and
# drawing 200,000 points takes seconds); the thinning keeps every bucket's extremes, so the
# curve's shape and the largest drawdown are exactly those of the whole series.
MAX_POINTS = 4000


def money(value: float, span: float) -> str:
    """`value` as money, precise enough to tell ticks `span` apart: $1,002,500, $1,002.75,
    or $12.50M when the ticks are millions apart."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    if span >= 1e6:
        return f"{sign}${value / 1e6:,.2f}M"
    if span < 20:
        return f"{sign}${value:,.2f}"
    return f"{sign}${value:,.0f}"


def equity_figure(equity: pd.Series, title: str = "", tz: tzinfo = UTC) -> Figure:
    """Draw the equity chart and return its Figure (`figure_png` makes PNG).

    equity: account equity (money), oldest first, indexed by tz-aware datetimes.
    title: the chart's title; the final equity, the return and the largest drawdown follow it.
    tz: the time zone of the date labels.
    """
    equity = pd.to_numeric(equity, errors="coerce").dropna()
    if equity.empty:
        raise ValueError("no equity to chart")
    times = pd.DatetimeIndex(equity.index)
    if times.tz is None:
        raise ValueError("equity must be indexed by tz-aware datetimes")
    values = equity.to_numpy(float)
    keep = thin(values, MAX_POINTS)
    values = values[keep]
    x = times[keep].tz_convert(tz).to_pydatetime()
    peak = np.maximum.accumulate(values)
    drawdown = np.where(peak > 0, values / peak - 1, 0.0)

    figure = new_figure(11, 6)
    grid = figure.add_gridspec(2, 1, height_ratios=(3, 1), hspace=0.05)
    curve = figure.add_subplot(grid[0])
    under = figure.add_subplot(grid[1], sharex=curve)
    marker = "o" if len(values) < 3 else None
    curve.plot(x, values, color=LINE, linewidth=1.6, marker=marker, label="equity", gid="equity")
    curve.plot(x, peak, color="#888888", linewidth=0.8, linestyle=(0, (3, 2)),
               label="high-water mark", gid="peak")
    curve.fill_between(x, values, peak, color=DOWN, alpha=0.12, linewidth=0,
                       label="drawdown", gid="drawdown-shade")
    under.fill_between(x, drawdown, 0, color=DOWN, alpha=0.45, linewidth=0, gid="drawdown")
    under.plot(x, drawdown, color=DOWN, linewidth=0.8)

    low, high = float(values.min()), float(values.max())
    pad = (high - low) * 0.06 or max(abs(high) * 0.001, 1.0)
    curve.set_ylim(low - pad, high + pad)
    curve.yaxis.set_major_locator(MaxNLocator(7))
    ticks = curve.yaxis.get_major_locator().tick_values(low - pad, high + pad)
    step = float(np.diff(ticks).min()) if len(ticks) > 1 else high - low
    curve.yaxis.set_major_formatter(FuncFormatter(lambda v, _: money(v, step)))
    worst = float(drawdown.min())
    under.set_ylim(min(worst * 1.15, -0.005), 0)
    under.yaxis.set_major_locator(MaxNLocator(3))
    under.yaxis.set_major_formatter(Decimals(lambda v, d: f"{v:.{max(d - 2, 0)}%}"))
    under.set_ylabel("drawdown", fontsize="small", color="#555555")

    locator = AutoDateLocator(tz=tz, minticks=4, maxticks=9)
    under.xaxis.set_major_locator(locator)
    under.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=tz))
    under.set_xlabel(f"date ({zone_name(tz)})", fontsize="small", color="#555555")
    curve.tick_params(labelbottom=False)
    for axes in (curve, under):
        axes.grid(color=GRID, linewidth=0.7)
        axes.set_axisbelow(True)
        axes.yaxis.tick_right()
        axes.yaxis.set_label_position("right")
        for side in ("top", "left"):
            axes.spines[side].set_visible(False)
    change = values[-1] / values[0] - 1 if values[0] else 0.0
    curve.set_title(title, loc="left", fontsize="medium", fontweight="bold")
    curve.set_title(f"{money(values[-1], 1.0 if step < 20 else 100.0)}   {change:+.2%}   "
                    f"max drawdown {worst:.2%}", loc="right", fontsize="medium")
    curve.legend(loc="upper left", fontsize="small", framealpha=0.85)
    figure.subplots_adjust(left=0.05, right=0.88, top=0.93, bottom=0.1)
    return figure


def thin(values: np.ndarray, max_points: int) -> np.ndarray:
    """The indices of `values` to draw: all of them up to `max_points`, else per bucket of
    consecutive points its first, last, lowest and highest, the point of its deepest drawdown
    and the high-water mark that drawdown is measured from."""
    n = len(values)
    if n <= max_points:
        return np.arange(n)
    positions = np.arange(n)
    peak = np.maximum.accumulate(values)
    peak_at = np.maximum.accumulate(np.where(values >= peak, positions, 0))
    drawdown = np.where(peak > 0, values / peak - 1, 0.0)
    size = -(-n // (max_points // 6))
    starts = np.arange(0, n, size)
    picks = [starts, np.minimum(starts + size, n) - 1]
    for series in (values, -values, drawdown):
        # argmin per bucket: pad to whole buckets with +inf, reshape, argmin along rows.
        padded = np.full(len(starts) * size, np.inf)
        padded[:n] = series
        picks.append(starts + padded.reshape(-1, size).argmin(axis=1))
    picks.append(peak_at[picks[-1]])
    return np.unique(np.concatenate(picks))


def equity_chart_png(
    equity: pd.Series, title: str = "", tz: tzinfo = UTC, path: str | Path | None = None
) -> bytes:
    """The equity chart as PNG bytes (also written to `path` if given); see `equity_figure`."""
    return figure_png(equity_figure(equity, title, tz), path)
