"""The simulator's one clock: simulated epoch seconds running at ``speed`` x wall time.

``speed == 0`` freezes the clock; it then moves only through ``advance``/``set_time``, which is
how tests drive the market deterministically.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo


def default_start(now: dt.datetime | None = None) -> float:
    """The most recent weekday 09:30 America/New_York strictly before ``now``."""
    tz = ZoneInfo("America/New_York")
    local = (now or dt.datetime.now(dt.UTC)).astimezone(tz)
    day = local.date()
    while True:
        candidate = dt.datetime(day.year, day.month, day.day, 9, 30, tzinfo=tz)
        if candidate.weekday() < 5 and candidate < local:
            return candidate.timestamp()
        day -= dt.timedelta(days=1)


class SimClock:
    """Simulated time as a linear function of the monotonic wall clock."""

    def __init__(self, start: float, speed: float = 1.0) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._base_sim = float(start)
        self._base_wall = time.monotonic()
        self._speed = float(speed)
        self._listeners: list[Callable[[], None]] = []

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        if self._speed == 0:
            return self._base_sim
        return self._base_sim + (time.monotonic() - self._base_wall) * self._speed

    def now_datetime(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.now(), dt.UTC)

    def wall_delay(self, target: float) -> float | None:
        """Wall seconds until simulated time reaches ``target`` (None if the clock is frozen)."""
        remaining = target - self.now()
        if remaining <= 0:
            return 0.0
        if self._speed == 0:
            return None
        return remaining / self._speed

    def set_speed(self, speed: float) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._rebase(self.now())
        self._speed = float(speed)
        self._notify()

    def advance(self, seconds: float) -> None:
        """Jump forward; the market driver then catches up on every step in between."""
        if seconds < 0:
            raise ValueError("the simulated clock never goes back")
        self._rebase(self.now() + seconds)
        self._notify()

    def set_time(self, t: float) -> None:
        if t < self.now():
            raise ValueError("the simulated clock never goes back")
        self._rebase(t)
        self._notify()

    def on_change(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def _rebase(self, sim: float) -> None:
        self._base_sim = sim
        self._base_wall = time.monotonic()

    def _notify(self) -> None:
        for cb in list(self._listeners):
            cb()
