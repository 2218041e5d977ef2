"""The session axis: bars placed side by side by index, trading sessions found from the gaps
between them, and time labels in a chosen zone (dates at session starts, times within)."""

from __future__ import annotations

from datetime import tzinfo
from itertools import pairwise

import numpy as np
import pandas as pd

# A gap longer than this many typical bar spacings starts a new session (a night, a weekend;
# with daily bars, a weekend: 3 days > 2.5 × 1 day, while a missing minute is no session).
GAP_FACTOR = 2.5
MINUTE = 60 * 10**9
DAY = 24 * 60 * MINUTE

# Tick steps, finest first: (unit, count).
_STEPS: tuple[tuple[str, int], ...] = (
    *(("min", k) for k in (1, 2, 5, 10, 15, 30, 60, 120, 180, 240, 360, 720)),
    ("day", 1),
    ("day", 2),
    ("week", 1),
    ("week", 2),
    *(("month", k) for k in (1, 2, 3, 6, 12, 24, 60)),
)


def bar_spacing(times: pd.DatetimeIndex) -> int:
    """The typical time between bars, in nanoseconds (the median; a minute for one bar)."""
    if len(times) < 2:
        return MINUTE
    return int(np.median(np.diff(ns(times))))


def session_starts(times: pd.DatetimeIndex) -> np.ndarray:
    """Indexes of the bars that open a session: the first bar, and each bar after a gap."""
    if len(times) == 0:
        return np.array([], dtype=int)
    gaps = np.diff(ns(times))
    after_gap = np.flatnonzero(gaps > GAP_FACTOR * bar_spacing(times)) + 1
    return np.concatenate(([0], after_gap)).astype(int)


def break_at(starts: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x (bar indexes) and y for a line with a NaN before each session start but the first,
    so the line stops at a session's end instead of bridging the gap to the next one."""
    x = np.arange(len(values), dtype=float)
    cuts = starts[starts > 0]
    return np.insert(x, cuts, np.nan), np.insert(values.astype(float), cuts, np.nan)


def groups(n: int, starts: np.ndarray, size: int) -> np.ndarray:
    """First index of each run of up to `size` bars, runs never crossing a session start."""
    bounds = [*starts.tolist(), n]
    firsts = [np.arange(a, b, size) for a, b in pairwise(bounds)]
    return np.concatenate(firsts).astype(int) if firsts else np.array([], dtype=int)


def ns(times: pd.DatetimeIndex) -> np.ndarray:
    """Nanoseconds since the epoch, whatever the index's unit (pandas 3 defaults to µs)."""
    return times.as_unit("ns").asi8


def _keys(naive: pd.DatetimeIndex, unit: str, count: int) -> np.ndarray:
    if unit == "min":
        return ns(naive) // (count * MINUTE)
    if unit == "day":
        return ns(naive.normalize()) // (count * DAY)
    if unit == "week":
        return np.asarray(naive.to_period("W").asi8) // count
    months = np.asarray(naive.year) * 12 + np.asarray(naive.month) - 1
    return months // count


def time_ticks(times: pd.DatetimeIndex, tz: tzinfo, max_ticks: int = 10) -> list[tuple[int, str]]:
    """(bar index, label) for the x axis: ticks where the clock in `tz` passes a round step,
    the step the finest that gives at most `max_ticks`; a date where the day changes (the
    first tick, each new session), a time of day within a session."""
    n = len(times)
    if n == 0:
        return []
    naive = times.tz_convert(tz).tz_localize(None)
    unit, count, candidates = "month", 60, np.array([0])
    for unit, count in _STEPS:
        keys = _keys(naive, unit, count)
        candidates = np.concatenate(([0], np.flatnonzero(np.diff(keys) != 0) + 1))
        if len(candidates) <= max_ticks:
            break
    # Ticks too close together would overlap: session starts are kept first, then the rest.
    min_gap = n / (max_ticks * 1.5)
    opening = set(session_starts(times).tolist())
    ordered = sorted(candidates.tolist(), key=lambda index: (index not in opening, index))
    kept: list[int] = []
    for index in ordered:
        if all(abs(index - other) >= min_gap for other in kept):
            kept.append(index)
    kept.sort()
    intraday = unit in ("min", "day") and bar_spacing(times) < DAY
    ticks: list[tuple[int, str]] = []
    previous: pd.Timestamp | None = None
    for index in kept:
        moment = naive[index]
        new_year = previous is None or moment.year != previous.year
        if intraday:
            new_day = previous is None or moment.date() != previous.date()
            label = moment.strftime("%a %d %b" if new_day else "%H:%M")
        elif unit == "month":
            label = moment.strftime("%b %Y" if new_year else "%b")
        else:
            label = moment.strftime("%d %b %Y" if new_year else "%d %b")
        ticks.append((index, label))
        previous = moment
    return ticks


def zone_name(tz: tzinfo) -> str:
    """The zone's IANA key where it has one (Europe/Berlin), else its name (UTC)."""
    return getattr(tz, "key", None) or str(tz)
