"""PNG charts from `ChartData`: a symbol's price with indicators and trades, or the equity curve.

Rendering uses matplotlib's Agg canvas on a `Figure` (no pyplot global state), so it is safe to
run in a worker thread; `chart_png` does that to keep the event loop free.
"""

from __future__ import annotations

import asyncio
import io
from datetime import tzinfo

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from bot.format import mode_tag
from engine.reports import ChartData


def render_png(data: ChartData, tz: tzinfo, mode: str) -> bytes:
    """Draw `data` and return PNG bytes; blocking, call it through `chart_png`."""
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


async def chart_png(data: ChartData, tz: tzinfo, mode: str) -> bytes:
    """Render off the event loop: a chart takes ~100 ms of CPU."""
    return await asyncio.to_thread(render_png, data, tz, mode)
