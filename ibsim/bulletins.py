"""IB's news bulletins (exchange halts, system notices) as the gateway keeps them: numbered as
posted, the current day's kept for a subscriber asking for all, a script of bulletins due at
given simulated times."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

# IB's msgType: a regular bulletin; an exchange no longer, or again, available for trading.
REGULAR, EXCHANGE_UNAVAILABLE, EXCHANGE_AVAILABLE = 1, 2, 3
MSG_TYPES = (REGULAR, EXCHANGE_UNAVAILABLE, EXCHANGE_AVAILABLE)


@dataclass(frozen=True, slots=True)
class Bulletin:
    msg_id: int
    msg_type: int
    message: str
    exchange: str  # where it originates; "" for a system-wide bulletin
    time: float  # simulated epoch seconds it was posted


@dataclass(frozen=True, slots=True)
class ScheduledBulletin:
    """A bulletin to post when the simulated clock reaches ``at`` (epoch seconds)."""

    at: float
    message: str
    exchange: str = ""
    msg_type: int = REGULAR


def check(message: str, msg_type: int) -> None:
    """ValueError naming what is wrong with a bulletin to post."""
    if not message.strip():
        raise ValueError("a bulletin needs a message")
    if msg_type not in MSG_TYPES:
        raise ValueError(f"msg_type must be one of {MSG_TYPES}, got {msg_type!r}")


def parse_scheduled(at: str, exchange: str, message: str, start: float) -> ScheduledBulletin:
    """``at`` as ``+SECONDS`` after ``start`` or an ISO datetime (UTC when naive)."""
    text = at.strip()
    if text.startswith("+"):
        try:
            when = start + float(text[1:])
        except ValueError:
            raise ValueError(f"expected +SECONDS or an ISO datetime, got {at!r}") from None
    else:
        try:
            stamp = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"expected +SECONDS or an ISO datetime, got {at!r}") from None
        when = (stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)).timestamp()
    check(message, REGULAR)
    return ScheduledBulletin(when, message, exchange)


class BulletinBoard:
    """The bulletins posted, and those scripted to come."""

    def __init__(self, script: list[ScheduledBulletin] | None = None) -> None:
        for item in script or []:
            check(item.message, item.msg_type)
        self._script = sorted(script or [], key=lambda b: b.at)
        self._posted: list[Bulletin] = []
        self._ids = itertools.count(1)

    def post(self, t: float, message: str, exchange: str = "", msg_type: int = REGULAR) -> Bulletin:
        check(message, msg_type)
        bulletin = Bulletin(next(self._ids), msg_type, message, exchange, t)
        self._posted.append(bulletin)
        return bulletin

    def since(self, day_start: float) -> list[Bulletin]:
        """The bulletins posted since ``day_start``; older ones are forgotten."""
        self._posted = [b for b in self._posted if b.time >= day_start]
        return list(self._posted)

    def due(self, now: float) -> list[ScheduledBulletin]:
        """The scripted bulletins whose time has come, taken off the script, in time order."""
        n = next((i for i, b in enumerate(self._script) if b.at > now), len(self._script))
        out, self._script = self._script[:n], self._script[n:]
        return out

    def next_due(self) -> float | None:
        return self._script[0].at if self._script else None
