"""IB Gateway's rhythm: the daily restart and the weekly login as downtimes that recur at a
local time of day (every day, or on one weekday) of the simulated clock."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

GATEWAY_TZ = "America/New_York"  # where IB Gateway usually runs for US traders (IBC's default)
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Downtime:
    """The gateway away (clients dropped, API port closed) for ``seconds`` of simulated time,
    from ``at`` local time every day, or every week on ``weekday`` (0 = Monday)."""

    what: str  # "daily restart", "weekly login": for the log
    at: dt.time
    seconds: float
    weekday: int | None = None
    time_zone: str = GATEWAY_TZ

    def next_start(self, after: float) -> float:
        """The first start at or after ``after`` (epoch seconds)."""
        tz = ZoneInfo(self.time_zone)
        day = dt.datetime.fromtimestamp(after, tz).date()
        for offset in range(9):
            date = day + dt.timedelta(days=offset)
            if self.weekday is not None and date.weekday() != self.weekday:
                continue
            start = dt.datetime.combine(date, self.at, tzinfo=tz).timestamp()
            if start >= after:
                return start
        raise AssertionError("a weekly time recurs within 8 days")


def time_of_day(text: str) -> dt.time:
    """``HH:MM`` (24-hour) as a time; ValueError otherwise."""
    hours, sep, minutes = text.strip().partition(":")
    if not sep or not (hours.isdigit() and minutes.isdigit()) or len(minutes) != 2:
        raise ValueError(f"expected a time of day HH:MM, got {text!r}")
    return dt.time(int(hours), int(minutes))


def weekly_time(text: str) -> tuple[int, dt.time]:
    """``DAY HH:MM`` (``Sun 01:00``) as (weekday, time); ValueError otherwise."""
    day, _, clock = text.strip().partition(" ")
    name = day[:3].lower()
    if name not in _WEEKDAYS:
        raise ValueError(f"expected a weekday and a time such as 'Sun 01:00', got {text!r}")
    return _WEEKDAYS.index(name), time_of_day(clock)
