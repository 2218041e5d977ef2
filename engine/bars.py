"""Bars of BAR_SIZE built from IB's 5-second real-time bars, and the checks every bar passes.

A bar closes when its interval ends (its last 5-second bar arrived, or a later one did, or the
broker clock passed its end), not after a count of updates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from engine.domain import Bar

REALTIME_BAR_SECONDS = 5


def bar_start(moment: datetime, bar_seconds: int) -> datetime:
    """The start of the bar interval containing `moment` (intervals aligned to the epoch)."""
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % bar_seconds, moment.tzinfo)


def bad_bar_reason(bar: Bar, previous: Bar | None) -> str | None:
    """Why a bar cannot be used, or None when it is sound."""
    prices = (bar.open, bar.high, bar.low, bar.close)
    if any(not math.isfinite(value) for value in (*prices, bar.volume)):
        return "non-finite value"
    if any(value <= 0 for value in prices):
        return "price not above zero"
    if bar.volume < 0:
        return "negative volume"
    if bar.high < bar.low:
        return "high below low"
    if not (bar.low <= bar.open <= bar.high and bar.low <= bar.close <= bar.high):
        return "open or close outside the high-low range"
    if previous is not None:
        if bar.time == previous.time:
            return "duplicate bar"
        if bar.time < previous.time:
            return "bar out of order"
    return None


@dataclass(slots=True)
class _Partial:
    start: datetime
    bar: Bar
    complete: bool  # built from the interval's first 5 seconds on (or seeded from history)


class BarBuilder:
    """Aggregates one symbol's 5-second bars into bars of `bar_seconds`."""

    def __init__(self, symbol: str, bar_seconds: int) -> None:
        if bar_seconds % REALTIME_BAR_SECONDS:
            raise ValueError("bar size must be a multiple of 5 seconds")
        self.symbol = symbol
        self.bar_seconds = bar_seconds
        self._partial: _Partial | None = None
        self._step = timedelta(seconds=bar_seconds)
        self.partial_dropped = 0  # bars dropped because streaming began in their middle
        self._stream_started = False

    def seed(self, bar: Bar) -> None:
        """Continue an interval already begun in history (the last, unfinished bar)."""
        self._partial = _Partial(bar.time, bar, complete=True)
        self._stream_started = True

    def add(self, small: Bar) -> list[Bar]:
        """Take one 5-second bar; return the bars it closed (usually zero or one)."""
        closed: list[_Partial] = []
        start = bar_start(small.time, self.bar_seconds)
        partial = self._partial
        if partial is not None and start < partial.start:
            return []  # late data for a bar already closed
        if partial is not None and start > partial.start:
            closed.append(partial)
            partial = None
        if partial is None:
            # Only the first bar of a stream can have begun before we listened; later ones
            # just had quiet seconds.
            complete = self._stream_started or small.time == start
            partial = _Partial(start, replace(small, time=start), complete=complete)
            self._stream_started = True
        elif start == partial.start:
            current = partial.bar
            partial.bar = Bar(
                self.symbol,
                start,
                current.open,
                max(current.high, small.high),
                min(current.low, small.low),
                small.close,
                current.volume + small.volume,
            )
        self._partial = partial
        # The 5-second bar that ends the interval closes the bar at once.
        if small.time + timedelta(seconds=REALTIME_BAR_SECONDS) >= partial.start + self._step:
            closed.append(partial)
            self._partial = None
        return self._finished(closed)

    def flush(self, now: datetime) -> Bar | None:
        """Close the bar being built if the broker clock says its interval is over."""
        if self._partial is not None and now >= self._partial.start + self._step:
            partial, self._partial = self._partial, None
            finished = self._finished([partial])
            return finished[0] if finished else None
        return None

    def reset(self) -> None:
        """Forget the bar being built (the stream restarts, e.g. after a reconnect)."""
        self._partial = None
        self._stream_started = False

    def _finished(self, closed: list[_Partial]) -> list[Bar]:
        # A bar whose first seconds were never seen has a wrong open (and high/low): drop it.
        complete = [partial.bar for partial in closed if partial.complete]
        self.partial_dropped += len(closed) - len(complete)
        return complete
