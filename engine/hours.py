"""Trading hours from IB contract details (`liquidHours` / `tradingHours`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class TradingHours:
    """Open intervals in UTC, and the days listed CLOSED (as UTC intervals); a schedule that
    lists nothing means "unknown", treated as always open."""

    intervals: tuple[tuple[datetime, datetime], ...]
    closed: tuple[tuple[datetime, datetime], ...] = ()
    # The end of the last local day the schedule lists (IB lists about a week); past it the
    # hours are unknown until the contract details are asked for again. None: lists nothing.
    known_until: datetime | None = None

    @classmethod
    def parse(cls, text: str, time_zone: str) -> TradingHours:
        """Parse IB's `20261123:0930-20261123:1600;20261124:CLOSED` in the contract's zone."""
        if not text:
            return cls(())
        zone = ZoneInfo(time_zone or "UTC")
        intervals = []
        closed = []
        last_day: datetime | None = None
        for part in text.split(";"):
            if "CLOSED" in part:  # a holiday: closed the whole local day
                day = datetime.strptime(part.split(":", 1)[0], "%Y%m%d").replace(tzinfo=zone)
                closed.append((day.astimezone(UTC), (day + timedelta(days=1)).astimezone(UTC)))
                last_day = max(last_day or day, day)
                continue
            if not part or "-" not in part:
                continue
            start_text, end_text = part.split("-", 1)
            start = datetime.strptime(start_text, "%Y%m%d:%H%M").replace(tzinfo=zone)
            end = datetime.strptime(end_text, "%Y%m%d:%H%M").replace(tzinfo=zone)
            intervals.append((start.astimezone(UTC), end.astimezone(UTC)))
            day = end.replace(hour=0, minute=0)
            last_day = max(last_day or day, day)
        until = None
        if last_day is not None:  # local midnight after the last day listed
            until = (last_day.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=zone)
        return cls(tuple(sorted(intervals)), tuple(sorted(closed)),
                   until.astimezone(UTC) if until else None)

    @property
    def known(self) -> bool:
        return bool(self.intervals or self.closed)

    def is_open(self, moment: datetime) -> bool:
        """Whether the market is open at `moment`; a moment the schedule does not reach is
        unknown, not closed (treated as open, as a schedule that lists nothing is)."""
        if any(start <= moment < end for start, end in self.closed):
            return False
        if not self.intervals:
            return True  # nothing but holidays listed: other days are unknown
        if self.known_until is not None and moment >= self.known_until:
            return True  # past the last day listed: unknown until refreshed
        return any(start <= moment < end for start, end in self.intervals)

    def stale(self, moment: datetime, ahead: timedelta = timedelta(days=1)) -> bool:
        """Whether the schedule ends within `ahead` of `moment`: time to ask again."""
        return self.known_until is not None and moment + ahead >= self.known_until


ALWAYS_OPEN = TradingHours(())


def trading_day(moment: datetime, time_zone: str) -> str:
    """The trading day (ISO date) of `moment` in the exchange's time zone."""
    return moment.astimezone(ZoneInfo(time_zone or "UTC")).date().isoformat()


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
