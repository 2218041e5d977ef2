"""Figures on matplotlib's Agg canvas and their PNG bytes; no pyplot, so drawing in a thread
or a worker process shares no global state."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter

DPI = 110
UP = "#26a69a"
DOWN = "#ef5350"
GRID = "#e6e6e6"


def new_figure(width: float, height: float) -> Figure:
    """An empty figure of `width` × `height` inches on an Agg canvas."""
    figure = Figure(figsize=(width, height), dpi=DPI, facecolor="white")
    FigureCanvasAgg(figure)
    return figure


def figure_png(figure: Figure, path: str | Path | None = None) -> bytes:
    """The figure as PNG bytes; also written to `path` when one is given."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor=figure.get_facecolor())
    png = buffer.getvalue()
    if path is not None:
        Path(path).write_bytes(png)
    return png


class Decimals(Formatter):
    """Tick labels with as few decimals as tell the ticks apart (100, 100.5, 100.25), written
    by `write(value, decimals)`; never an offset or scientific notation."""

    def __init__(self, write: Callable[[float, int], str] = lambda v, d: f"{v:,.{d}f}") -> None:
        self.write = write
        self.decimals = 2

    def format_ticks(self, values: Sequence[float]) -> list[str]:
        self.decimals = decimals_for(values)
        return [self(value) for value in values]

    def __call__(self, x: float, pos: int | None = None) -> str:
        return self.write(x, self.decimals)


def decimals_for(values: Sequence[float]) -> int:
    """The fewest decimals (up to 6) that write every value exactly."""
    for decimals in range(7):
        if all(abs(round(v, decimals) - v) < 1e-9 * max(1.0, abs(v)) for v in values):
            return decimals
    return 6
