"""How long the engine keeps done things in memory: months unattended must not mean memory
that grows with every order. The journal keeps everything; memory keeps what can still matter.

A done order is kept DONE_ORDER_RETENTION of broker time after it was done (a late status,
a cancel, a reconciliation in the meantime find it in memory), then looked up in the journal.
An execution id is kept EXEC_ID_RETENTION after it was seen: live duplicates come within a
connection's day (IB re-sends the day's executions after a reconnect); reconciliation's
recovered executions are deduplicated by the journal's fills table (keyed by exec id).
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

DONE_ORDER_RETENTION = timedelta(hours=2)
# The current trading day, and a margin: IB re-sends the day's executions after a reconnect.
EXEC_ID_RETENTION = timedelta(hours=26)

K = TypeVar("K", bound=Hashable)


class Expiring(Generic[K]):
    """Keys remembered with the broker time they were first noted, dropped oldest first once
    older than `retention`. Kept in the order noted, which is the order of their times: the
    broker's clock steps back only once, when first synced (from wall time to the broker's),
    and then the times noted before are brought back with it."""

    def __init__(self, retention: timedelta) -> None:
        self.retention = retention
        self._since: dict[K, datetime] = {}
        self._latest: datetime | None = None

    def __contains__(self, key: object) -> bool:
        return key in self._since

    def __len__(self) -> int:
        return len(self._since)

    def note(self, key: K, now: datetime) -> None:
        """Remember `key` from `now` (a key already remembered keeps its first time)."""
        if key not in self._since:
            self._stepped_back(now)
            self._since[key] = now

    def renew(self, key: K, now: datetime) -> None:
        """Remember `key` from `now` again, as if noted for the first time."""
        self._since.pop(key, None)
        self.note(key, now)

    def _stepped_back(self, now: datetime) -> None:
        if self._latest is not None and now < self._latest:
            self._since = {key: min(since, now) for key, since in self._since.items()}
        self._latest = now

    def discard(self, key: K) -> None:
        self._since.pop(key, None)

    def expire(self, now: datetime) -> list[K]:
        """Forget, and return, the keys noted longer than `retention` before `now`."""
        cutoff = now - self.retention
        expired = []
        for key, since in self._since.items():
            if since > cutoff:
                break
            expired.append(key)
        for key in expired:
            del self._since[key]
        return expired
