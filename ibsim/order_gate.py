"""The order gate: order requests (place, cancel, global cancel) reach the broker at once, or are
held while order acks are delayed or IB's servers are unreachable, then run in arrival order."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from .fault_state import FaultState


class OrderGate:
    def __init__(self, faults: FaultState, after: Callable[[], None]) -> None:
        """``after`` runs after each request reached the broker (the book may have changed)."""
        self._faults = faults
        self._after = after
        self._held: deque[tuple[float, Callable[[], None]]] = deque()  # (due, request)
        self._timer: asyncio.TimerHandle | None = None

    def submit(self, request: Callable[[], None]) -> None:
        """Run an order request now, or later when acks are delayed or IB is unreachable."""
        faults = self._faults
        if not self._held and not faults.ack_delay and not faults.connectivity_lost:
            request()
            self._after()
            return
        self._held.append((time.monotonic() + faults.ack_delay, request))
        self.release()

    def release(self) -> None:
        """Arm the timer for the next held request (again after connectivity is restored)."""
        if self._timer is not None or not self._held:
            return
        if self._faults.connectivity_lost:
            return  # released when connectivity is restored
        delay = max(0.0, self._held[0][0] - time.monotonic())
        self._timer = asyncio.get_running_loop().call_later(delay, self._drain)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _drain(self) -> None:
        self._timer = None
        now = time.monotonic()
        while self._held and self._held[0][0] <= now and not self._faults.connectivity_lost:
            _, request = self._held.popleft()
            request()
            self._after()
        self.release()
