"""How numbers and times read in a message: quantities, prices, money, clock times, stamps,
durations; a missing value is a dash."""

from __future__ import annotations

import math
from datetime import datetime, tzinfo

_DASH = "–"


def qty(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return _DASH
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.4f}".rstrip("0").rstrip(".")


def compact_qty(value: float) -> str:
    """A quantity in a list of orders or positions: `5`, `-7`, `0.5` (no grouping)."""
    return f"{value:g}"


def price(value: float | None) -> str:
    if value is None or math.isnan(value):
        return _DASH
    if abs(value) >= 1 or value == 0:
        return f"{value:,.2f}"
    return f"{value:.4g}"


def money(value: float | None, signed: bool = True) -> str:
    if value is None or math.isnan(value):
        return _DASH
    return f"{value:+,.2f}" if signed else f"{value:,.2f}"


def clock(when: datetime | None, tz: tzinfo) -> str:
    return when.astimezone(tz).strftime("%H:%M:%S") if when else _DASH


def stamp(when: datetime | None, tz: tzinfo) -> str:
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z").strip() if when else _DASH


def duration(seconds: float | None) -> str:
    if seconds is None:
        return _DASH
    seconds = max(round(seconds), 0)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"
