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

    @classmethod
    def parse(cls, text: str, time_zone: str) -> TradingHours:
        """Parse IB's `20261123:0930-20261123:1600;20261124:CLOSED` in the contract's zone."""
        if not text:
            return cls(())
        zone = ZoneInfo(time_zone or "UTC")
        intervals = []
        closed = []
        for part in text.split(";"):
            if "CLOSED" in part:  # a holiday: closed the whole local day
                day = datetime.strptime(part.split(":", 1)[0], "%Y%m%d").replace(tzinfo=zone)
                closed.append((day.astimezone(UTC), (day + timedelta(days=1)).astimezone(UTC)))
                continue
            if not part or "-" not in part:
                continue
            start_text, end_text = part.split("-", 1)
            start = datetime.strptime(start_text, "%Y%m%d:%H%M").replace(tzinfo=zone)
            end = datetime.strptime(end_text, "%Y%m%d:%H%M").replace(tzinfo=zone)
            intervals.append((start.astimezone(UTC), end.astimezone(UTC)))
        return cls(tuple(sorted(intervals)), tuple(sorted(closed)))

    @property
    def known(self) -> bool:
        return bool(self.intervals or self.closed)

    def is_open(self, moment: datetime) -> bool:
        if any(start <= moment < end for start, end in self.closed):
            return False
        if not self.intervals:
            return True  # nothing but holidays listed: other days are unknown
        return any(start <= moment < end for start, end in self.intervals)


ALWAYS_OPEN = TradingHours(())


def trading_day(moment: datetime, time_zone: str) -> str:
    """The trading day (ISO date) of `moment` in the exchange's time zone."""
    return moment.astimezone(ZoneInfo(time_zone or "UTC")).date().isoformat()


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
