"""Figures on matplotlib's Agg canvas and their PNG bytes; no pyplot, so drawing in a thread
or a worker process shares no global state."""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

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
