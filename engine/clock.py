"""The broker's clock, the engine's only clock.

On ibsim the simulated clock runs at SIM_SPEED × wall time; against IB it is wall time. The
clock is anchored to every broker timestamp it is shown (bars, reqCurrentTime) and runs on at
`speed` from the last anchor, so staleness, bar boundaries and the trading day follow the
broker, never `time.time()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class BrokerClock:
    def __init__(self, speed: float = 1.0, monotonic: Callable[[], float] = time.monotonic):
        self.speed = speed
        self._monotonic = monotonic
        self._anchor: datetime | None = None
        self._anchor_mono = 0.0

    @property
    def synced(self) -> bool:
        return self._anchor is not None

    def sync(self, broker_time: datetime) -> None:
        """Anchor to a broker timestamp; never step backwards."""
        if broker_time.tzinfo is None:
            raise ValueError("broker time must be timezone-aware")
        if self._anchor is not None and broker_time <= self.now():
            return
        self._anchor = broker_time.astimezone(UTC)
        self._anchor_mono = self._monotonic()

    def now(self) -> datetime:
        if self._anchor is None:
            return datetime.now(UTC)
        elapsed = (self._monotonic() - self._anchor_mono) * self.speed
        return self._anchor + timedelta(seconds=elapsed)

    def wall_seconds(self, broker_seconds: float) -> float:
        """How long `broker_seconds` of broker time last on the wall clock."""
        return broker_seconds / self.speed
