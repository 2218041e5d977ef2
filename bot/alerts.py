"""From engine events to alerts: which events are worth telling, how loudly, and bursts as digests.

`AlertPump` reads the control API's event subscription, turns events into `Alert`s according to
the per-type levels (on / silent / off), merges a burst of one type into a digest, adds the
daily summary, and hands each alert to a sink (the Telegram delivery queue or the console).
The sink must not block for long; the engine never waits for any of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

from bot.messages.document import Doc, one_line
from bot.messages.events import (
    broker_error_doc,
    connection_doc,
    data_event_doc,
    digest_doc,
    dropped_doc,
    fill_doc,
    front_month_doc,
    lifecycle_doc,
    option_settled_doc,
    order_event_doc,
    reconcile_doc,
    risk_event_doc,
)
from bot.messages.news import bulletin_doc
from bot.messages.status import error_doc
from bot.messages.trading import daily_summary_doc
from engine.config import ALERT_KINDS, AlertLevel
from engine.control import ControlAPI
from engine.events import (
    BrokerErrorEvent,
    BulletinEvent,
    ConnectionEvent,
    DataEvent,
    FillEvent,
    FrontMonthEvent,
    Level,
    LifecycleEvent,
    OptionSettledEvent,
    OrderEvent,
    ReconcileEvent,
    RiskEvent,
)

log = logging.getLogger(__name__)

KINDS = ALERT_KINDS
DEFAULT_LEVELS: dict[str, AlertLevel] = {
    "fills": "on",
    "orders": "on",
    "errors": "on",
    "connection": "on",
    "risk": "on",
    "reconcile": "on",
    "lifecycle": "silent",
    "daily_summary": "silent",
    "bulletins": "on",
}
# Never merged into a digest: each one matters on its own and they are rare.
_NEVER_DIGESTED = frozenset({"lifecycle", "daily_summary", "security", "system", "connection"})


@dataclass(frozen=True, slots=True)
class Alert:
    kind: str  # one of KINDS, or "security"/"system" (always on)
    doc: Doc
    silent: bool = False
    time: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def summary(self) -> str:
        return one_line(self.doc)


def validate_levels(levels: Mapping[str, str] | None) -> dict[str, AlertLevel]:
    """Fill in defaults; raise ValueError naming a bad kind or level."""
    merged: dict[str, AlertLevel] = dict(DEFAULT_LEVELS)
    for kind, level in (levels or {}).items():
        if kind not in KINDS:
            raise ValueError(f"unknown alert type {kind!r}; known: {', '.join(KINDS)}")
        if level not in ("on", "silent", "off"):
            raise ValueError(f"alert level for {kind} must be on, silent or off, not {level!r}")
        merged[kind] = level  # type: ignore[assignment]
    return merged


def classify(event: object, tz: ZoneInfo) -> tuple[str, Doc] | None:
    """The alert type and text for an event, or None when the event is not alert-worthy."""
    match event:
        case FillEvent():
            return "fills", fill_doc(event, tz)
        case OrderEvent(kind="rejected" | "cancelled"):
            return "orders", order_event_doc(event)
        case BrokerErrorEvent(level=Level.WARNING | Level.ERROR):
            return "errors", broker_error_doc(event, tz)
        case ConnectionEvent(state=state) if state.value != "connecting":
            return "connection", connection_doc(event, tz)
        case RiskEvent():
            return "risk", risk_event_doc(event, tz)
        case DataEvent():
            return "risk", data_event_doc(event, tz)
        case FrontMonthEvent():
            return "risk", front_month_doc(event, tz)
        case OptionSettledEvent():
            return "risk", option_settled_doc(event, tz)
        case BulletinEvent():
            return "bulletins", bulletin_doc(event, tz)
        case ReconcileEvent() if event.differences or event.adopted:
            return "reconcile", reconcile_doc(event)
        case LifecycleEvent(kind="daily_summary"):
            return "daily_summary", lifecycle_doc(event, tz)
        case LifecycleEvent():
            return "lifecycle", lifecycle_doc(event, tz)
    return None


class BurstMerger:
    """Lets `limit` alerts of a type through per `window` seconds; the rest become one digest
    sent `delay` seconds after the first held alert. Pure logic with an injected clock."""

    def __init__(self, limit: int = 5, window: float = 60.0, delay: float = 10.0) -> None:
        self.limit, self.window, self.delay = limit, window, delay
        self._sent: dict[str, deque[float]] = {}
        self._held: dict[str, list[Alert]] = {}
        self._held_since: dict[str, float] = {}

    def offer(self, alert: Alert, now: float) -> Alert | None:
        """The alert to send now, or None when it was held for a digest."""
        if alert.kind in _NEVER_DIGESTED:
            return alert
        sent = self._sent.setdefault(alert.kind, deque())
        while sent and now - sent[0] > self.window:
            sent.popleft()
        if alert.kind not in self._held and len(sent) < self.limit:
            sent.append(now)
            return alert
        self._held.setdefault(alert.kind, []).append(alert)
        self._held_since.setdefault(alert.kind, now)
        return None

    def next_deadline(self) -> float | None:
        return min((t + self.delay for t in self._held_since.values()), default=None)

    def due(self, now: float, everything: bool = False) -> list[Alert]:
        """Digests whose delay has passed (all of them with `everything`)."""
        out = []
        for kind in [k for k, t in self._held_since.items() if everything or now >= t + self.delay]:
            held = self._held.pop(kind)
            since = self._held_since.pop(kind)
            self._sent.setdefault(kind, deque()).append(now)
            if len(held) == 1:
                out.append(held[0])
                continue
            span = max(now - since, (held[-1].time - held[0].time).total_seconds(), 1.0)
            doc = digest_doc(kind, [a.summary for a in held], span)
            out.append(Alert(kind, doc, silent=all(a.silent for a in held), time=held[-1].time))
        return out


AlertSink = Callable[[Alert], Awaitable[None]]


class AlertPump:
    """Subscribes to the engine's events and feeds alerts to `sink` until stopped."""

    def __init__(
        self,
        control: ControlAPI,
        sink: AlertSink,
        levels: Mapping[str, str] | None = None,
        display_tz: ZoneInfo | None = None,
        daily_summary_time: dtime | None = None,
        merger: BurstMerger | None = None,
        fill_grace: float = 3.0,
    ) -> None:
        self.control = control
        self.sink = sink
        self.levels = validate_levels(levels)
        self.tz = display_tz or ZoneInfo("UTC")
        self.daily_summary_time = daily_summary_time
        self.merger = merger or BurstMerger()
        self.fill_grace = fill_grace
        self._subscription = control.subscribe()
        self._tasks: list[asyncio.Task[None]] = []
        self._partial_fills: dict[str, tuple[float, FillEvent]] = {}
        self._reported_dropped = 0

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._run(), name="alerts:pump"))
        if self.daily_summary_time is not None:
            self._tasks.append(asyncio.create_task(self._daily(), name="alerts:daily"))

    async def stop(self) -> None:
        """Stop reading events; alerts already offered and held digests reach the sink."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._subscription.close()
        while self._subscription.pending():
            await self._handle(self._subscription.get_nowait())
        for _, event in list(self._partial_fills.values()):
            await self._emit_event(event)
        self._partial_fills.clear()
        for alert in self.merger.due(time.monotonic(), everything=True):
            await self.sink(alert)

    async def publish(self, alert: Alert) -> None:
        """Send an alert that did not come from the event stream (security, system)."""
        if alert.kind in self.levels and self.levels[alert.kind] == "off":
            return
        await self._offer(alert)

    async def _run(self) -> None:
        while True:
            deadline = self._next_deadline()
            timeout = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            try:
                event = await asyncio.wait_for(self._subscription.get(), timeout)
            except TimeoutError:
                event = None
            try:
                if event is not None:
                    await self._handle(event)
                await self._flush_due()
            except Exception:  # one malformed event must not end the alert stream
                log.exception("could not turn an event into an alert: %r", type(event).__name__)

    def _next_deadline(self) -> float | None:
        deadlines = [t + self.fill_grace for t, _ in self._partial_fills.values()]
        merger_deadline = self.merger.next_deadline()
        if merger_deadline is not None:
            deadlines.append(merger_deadline)
        return min(deadlines, default=None)

    async def _handle(self, event: object) -> None:
        dropped = self._subscription.dropped
        if dropped > self._reported_dropped:
            lost = dropped - self._reported_dropped
            self._reported_dropped = dropped
            doc = dropped_doc({"events": lost}, "the alert pipeline fell behind the engine")
            await self._offer(Alert("system", doc))
        if isinstance(event, FillEvent) and not event.final:
            # The commission follows within milliseconds; wait a little for the final event.
            self._partial_fills[event.fill.exec_id] = (time.monotonic(), event)
            return
        if isinstance(event, FillEvent):
            self._partial_fills.pop(event.fill.exec_id, None)
        await self._emit_event(event)

    async def _emit_event(self, event: object) -> None:
        classified = classify(event, self.tz)
        if classified is None:
            return
        kind, doc = classified
        level = self.levels.get(kind, "on")
        if level == "off":
            return
        await self._offer(Alert(kind, doc, silent=level == "silent"))

    async def _offer(self, alert: Alert) -> None:
        ready = self.merger.offer(alert, time.monotonic())
        if ready is not None:
            await self.sink(ready)

    async def _flush_due(self) -> None:
        now = time.monotonic()
        for exec_id, (since, event) in list(self._partial_fills.items()):
            if now >= since + self.fill_grace:
                del self._partial_fills[exec_id]
                await self._emit_event(event)
        for alert in self.merger.due(now):
            await self.sink(alert)

    async def _daily(self) -> None:
        assert self.daily_summary_time is not None
        while True:
            await asyncio.sleep(seconds_until(self.daily_summary_time, self.tz))
            if self.levels["daily_summary"] == "off":
                continue
            try:
                doc = await self.daily_summary()
            except Exception:  # the engine could not answer: say so instead of staying silent
                log.exception("daily summary failed")
                doc = error_doc("Daily summary unavailable: the engine did not answer")
            await self.sink(Alert("daily_summary", doc, self.levels["daily_summary"] == "silent"))

    async def daily_summary(self) -> Doc:
        pnl, status = await asyncio.gather(self.control.pnl(), self.control.status())
        fills = await self.control.trades(500)
        today = datetime.now(self.tz).date()
        fills_today = sum(1 for f in fills if f.time.astimezone(self.tz).date() == today)
        return daily_summary_doc(pnl, status, fills_today)


def seconds_until(at: dtime, tz: ZoneInfo, now: datetime | None = None) -> float:
    """Seconds from `now` to the next wall-clock `at` in `tz` (DST-aware)."""
    now = (now or datetime.now(UTC)).astimezone(tz)
    target = datetime.combine(now.date(), at, tzinfo=tz)
    if target <= now:
        target = datetime.combine(now.date() + timedelta(days=1), at, tzinfo=tz)
    # Same-tzinfo subtraction is wall-clock time; through UTC it is real time (DST-safe).
    return max((target.astimezone(UTC) - now.astimezone(UTC)).total_seconds(), 0.0)
