"""Trading sessions: when each kind of market is open, in UTC, and IB's hours strings."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

UTC = dt.UTC


@dataclass(frozen=True, slots=True)
class Session:
    """One trading session: [start, end) in epoch seconds, labelled with its trade date."""

    trade_date: dt.date
    start: float
    end: float


# A schedule maps a trade date to the local (start, end) of its session, or None when closed.
# Times are (days offset from the trade date, hour, minute) in the schedule's time zone.
_Window = tuple[tuple[int, int, int], tuple[int, int, int]]


@dataclass(frozen=True, slots=True, eq=False)
class Schedule:
    """Weekly session pattern of one kind of market (trading hours and liquid hours)."""

    name: str
    tz: str
    trading: dict[int, _Window]  # weekday (0=Mon) of the trade date -> window
    liquid: dict[int, _Window]

    def windows(self, rth: bool) -> dict[int, _Window]:
        return self.liquid if rth else self.trading


_WEEKDAYS = range(5)
_ALL_DAYS = range(7)

SCHEDULES: dict[str, Schedule] = {
    # ibsim's stock exchanges have regular hours only (no pre/post market).
    "us_equity": Schedule(
        "us_equity",
        "US/Eastern",
        {d: ((0, 9, 30), (0, 16, 0)) for d in _WEEKDAYS},
        {d: ((0, 9, 30), (0, 16, 0)) for d in _WEEKDAYS},
    ),
    # IDEALPRO: Sunday 17:15 ET to Friday 17:00 ET with a daily 15-minute break.
    "fx": Schedule(
        "fx",
        "US/Eastern",
        {d: ((-1, 17, 15), (0, 17, 0)) for d in _WEEKDAYS},
        {d: ((-1, 17, 15), (0, 17, 0)) for d in _WEEKDAYS},
    ),
    # PAXOS crypto trades around the clock.
    "crypto": Schedule(
        "crypto",
        "US/Eastern",
        {d: ((0, 0, 0), (1, 0, 0)) for d in _ALL_DAYS},
        {d: ((0, 0, 0), (1, 0, 0)) for d in _ALL_DAYS},
    ),
    # CME equity index futures: Sunday 17:00 CT to Friday 16:00 CT, daily break 16:00-17:00;
    # regular hours 08:30-15:00 CT.
    "cme_equity": Schedule(
        "cme_equity",
        "US/Central",
        {d: ((-1, 17, 0), (0, 16, 0)) for d in _WEEKDAYS},
        {d: ((0, 8, 30), (0, 15, 0)) for d in _WEEKDAYS},
    ),
}


def _local(date: dt.date, spec: tuple[int, int, int], tz: ZoneInfo) -> dt.datetime:
    days, hour, minute = spec
    day = date + dt.timedelta(days=days)
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)


@lru_cache(maxsize=8192)
def session_for(schedule: Schedule, trade_date: dt.date, rth: bool) -> Session | None:
    """The session whose trade date is ``trade_date``, or None if the market is closed."""
    window = schedule.windows(rth).get(trade_date.weekday())
    if window is None:
        return None
    tz = ZoneInfo(schedule.tz)
    start = _local(trade_date, window[0], tz).timestamp()
    end = _local(trade_date, window[1], tz).timestamp()
    return Session(trade_date, start, end)


def local_date(t: float, tz: str) -> dt.date:
    return dt.datetime.fromtimestamp(t, ZoneInfo(tz)).date()


def sessions_between(schedule: Schedule, t0: float, t1: float, rth: bool) -> list[Session]:
    """Sessions overlapping [t0, t1), oldest first."""
    first = local_date(t0, schedule.tz) - dt.timedelta(days=1)
    last = local_date(t1, schedule.tz) + dt.timedelta(days=2)
    out = []
    day = first
    while day <= last:
        s = session_for(schedule, day, rth)
        if s is not None and s.end > t0 and s.start < t1:
            out.append(s)
        day += dt.timedelta(days=1)
    return out


def sessions_before(schedule: Schedule, t: float, count: int, rth: bool) -> list[Session]:
    """The last ``count`` sessions that started before ``t`` (oldest first)."""
    out: list[Session] = []
    day = local_date(t, schedule.tz) + dt.timedelta(days=1)
    # Markets here are never closed for more than a few days in a row, so this terminates.
    while len(out) < count:
        s = session_for(schedule, day, rth)
        if s is not None and s.start < t:
            out.append(s)
        day -= dt.timedelta(days=1)
    out.reverse()
    return out


def session_at(schedule: Schedule, t: float, rth: bool) -> Session | None:
    """The session containing ``t``, if the market is open then."""
    day = local_date(t, schedule.tz)
    for d in (day, day + dt.timedelta(days=1), day - dt.timedelta(days=1)):
        s = session_for(schedule, d, rth)
        if s is not None and s.start <= t < s.end:
            return s
    return None


def next_session(schedule: Schedule, t: float, rth: bool) -> Session:
    """The first session ending after ``t`` (the current one if open)."""
    day = local_date(t, schedule.tz) - dt.timedelta(days=1)
    while True:
        s = session_for(schedule, day, rth)
        if s is not None and s.end > t:
            return s
        day += dt.timedelta(days=1)


def hours_string(schedule: Schedule, t: float, rth: bool, days: int = 7) -> str:
    """IB's tradingHours/liquidHours format for ``days`` trade dates starting at ``t``'s date.

    Example: ``20261123:0930-20261123:1600;20261124:0930-20261124:1600;20261128:CLOSED``.
    """
    tz = ZoneInfo(schedule.tz)
    day = local_date(t, schedule.tz)
    parts = []
    for i in range(days):
        d = day + dt.timedelta(days=i)
        s = session_for(schedule, d, rth)
        if s is None:
            parts.append(f"{d:%Y%m%d}:CLOSED")
            continue
        a = dt.datetime.fromtimestamp(s.start, tz)
        b = dt.datetime.fromtimestamp(s.end, tz)
        parts.append(f"{a:%Y%m%d:%H%M}-{b:%Y%m%d:%H%M}")
    return ";".join(parts)
