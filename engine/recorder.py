"""The recorder: one call journals a fact and publishes its event.

Every part of the engine tells the world through here. The row goes through the journal
writer (in the order of the calls, never awaited on the hot path); the event goes on the bus
for the front-ends. `record_durable` is the same, for the rare facts a caller must know are on
disk before it goes on (a command someone gave, a state a restart must resume).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Mapping
from typing import Any

from engine.clock import BrokerClock
from engine.events import EventBus, Level, RiskEvent, RiskKind
from engine.journal_rows import Statement, event_stmt
from engine.journal_writer import JournalWriter

log = logging.getLogger(__name__)

# A failing handler or task is alerted at most this often per kind (it is journaled every time).
FAILURE_ALERT_SECONDS = 3600.0


class Recorder:
    def __init__(self, writer: JournalWriter, bus: EventBus, clock: BrokerClock) -> None:
        self.writer = writer
        self.bus = bus
        self.clock = clock
        self._failure_alerted: dict[str, float] = {}  # kind -> when last alerted (monotonic)

    def record(
        self,
        level: Level | str,
        kind: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        *,
        event: object | None = None,
    ) -> None:
        """Journal an event row (queued, in call order) and publish `event`, if any."""
        self.writer.write(event_stmt(str(level), kind, message, dict(details or {})))
        if event is not None:
            self.bus.publish(event)

    async def record_durable(
        self, level: Level | str, kind: str, message: str,
        details: Mapping[str, Any] | None = None, *, event: object | None = None,
    ) -> None:
        """As record(), returning once the row is committed (after every row queued before)."""
        if event is not None:
            self.bus.publish(event)
        await self.writer.write_durable(
            event_stmt(str(level), kind, message, dict(details or {})), urgent=False
        )

    def write(self, statement: Statement) -> None:
        """Journal a row that is not an event (an order, a fill, a state), in call order."""
        self.writer.write(statement)

    async def write_durable(self, statement: Statement) -> int:
        """Journal a row, in call order, and return its rowcount once it is committed."""
        return await self.writer.write_durable(statement, urgent=False)

    def publish(self, event: object) -> None:
        """Tell the front-ends something that is journaled elsewhere (or needs no row)."""
        self.bus.publish(event)

    def failure(self, what: str, error: BaseException, logged: bool = False) -> None:
        """A bug or an unexpected value: logged with its traceback, journaled, and alerted
        once per kind an hour, so a failure that repeats on every bar does not flood."""
        if not logged:
            log.error("%s failed", what, exc_info=error)
        message = f"{what} failed: {type(error).__name__}: {error}"
        trace = "".join(traceback.format_exception(error))
        now = time.monotonic()
        last = self._failure_alerted.get(what)
        alert = None
        if last is None or now - last >= FAILURE_ALERT_SECONDS:
            self._failure_alerted[what] = now
            alert = RiskEvent(RiskKind.INTERNAL_ERROR,
                              f"{message} (see the log; alerted at most hourly)",
                              self.clock.now())
        self.record(Level.ERROR, "internal_error", message, {"traceback": trace}, event=alert)
