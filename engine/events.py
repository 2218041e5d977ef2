"""In-process publish/subscribe of engine events; a slow subscriber cannot stall the engine.

Each subscriber owns a bounded queue. `publish` never awaits: when a subscriber's queue is
full, the oldest event is dropped and counted, so the subscriber can say what it missed.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.domain import (
    Bulletin,
    ConnectionState,
    EngineState,
    Fill,
    Order,
    OrderStatus,
    Settlement,
)


class Level(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class RiskKind(enum.StrEnum):
    REFUSED = "refused"  # an order the strategy wanted, refused by a rule
    PAUSED = "paused"
    HALTED = "halted"
    JOURNAL = "journal"  # the journal cannot be written
    INTERNAL_ERROR = "internal_error"  # a handler or a task raised


class DataKind(enum.StrEnum):
    BAD_BAR = "bad_bar"
    NO_HISTORY = "no_history"
    QUIET = "quiet"


class OrderEventKind(enum.StrEnum):
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class LifecycleKind(enum.StrEnum):
    STARTUP = "startup"
    SHUTDOWN = "shutdown"
    DAILY_SUMMARY = "daily_summary"


@dataclass(frozen=True, slots=True)
class FillEvent:
    """An execution of one of the bot's orders (sent again once its commission is known)."""

    fill: Fill
    position_after: float | None = None
    final: bool = True  # False: commission not yet reported


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """The broker rejected or cancelled an order, or an order completed."""

    order: Order
    kind: OrderEventKind
    message: str = ""
    code: int | None = None


@dataclass(frozen=True, slots=True)
class BrokerErrorEvent:
    code: int
    message: str
    meaning: str
    level: Level
    time: datetime
    req_id: int = -1


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    state: ConnectionState
    time: datetime
    downtime_seconds: float | None = None  # set when a connection is restored
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RiskEvent:
    """A risk decision worth telling a person about (auto-pause, stale data, a refusal)."""

    kind: RiskKind
    message: str
    time: datetime
    symbol: str | None = None
    state: EngineState | None = None


@dataclass(frozen=True, slots=True)
class DataEvent:
    """Something wrong with market data: a bad bar dropped, a gap, a quiet symbol."""

    kind: DataKind
    symbol: str
    message: str
    time: datetime
    count: int = 1


@dataclass(frozen=True, slots=True)
class BulletinEvent:
    """One of IB's news bulletins: an exchange halted or back, a system notice."""

    bulletin: Bulletin
    time: datetime


@dataclass(frozen=True, slots=True)
class FrontMonthEvent:
    """A future followed by its front month rolled from `old` to `new` (IB's local symbols).
    `switched`: the bot now trades `new`. Otherwise it still holds `held` of `old` (or has an
    order working in it): it keeps `old` for exits only, enters nothing, until `old` is closed.
    """

    symbol: str
    old: str
    new: str
    switched: bool
    time: datetime
    held: float = 0.0


@dataclass(frozen=True, slots=True)
class OptionSettledEvent:
    """An option held at its expiry, settled by the broker with no execution."""

    settlement: Settlement
    time: datetime


class DifferenceKind(enum.StrEnum):
    DONE_WHILE_AWAY = "done_while_away"  # completed at the broker: `status`
    FILLED_WHILE_AWAY = "filled_while_away"  # not listed, but its executions fill it
    PARTLY_FILLED = "partly_filled"  # `filled` of `quantity` executed; the rest unknown
    NOT_SEEN = "not_seen"  # missing at the broker: waits for IB, never sent again
    NO_TRACE = "no_trace"  # missing for a whole grace period with IB's servers up: cancelled
    OTHER_CLIENT = "other_client"  # open under `client_id`, not ours: not adopted
    NOT_JOURNALED = "not_journaled"  # ours, open at the broker, not journaled: adopted
    FILLS_RECOVERED = "fills_recovered"  # `count` executions journaled from the broker
    UNKNOWN_ORDER_EXECUTION = "unknown_order_execution"  # the bot's orderRef, no such order


@dataclass(frozen=True, slots=True)
class Difference:
    """One thing the broker showed that the engine did not know; the fields its kind uses."""

    kind: DifferenceKind
    order_ref: str = ""
    symbol: str = ""
    status: OrderStatus | None = None
    filled: float | None = None
    quantity: float | None = None
    client_id: int | None = None  # the client id the order is open under
    our_client_id: int | None = None
    count: int = 0


@dataclass(frozen=True, slots=True)
class ReconcileEvent:
    """Differences found between the journal and the broker after a (re)connect."""

    differences: tuple[Difference, ...]
    adopted: int
    time: datetime


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    kind: LifecycleKind
    time: datetime
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CommandEvent:
    """A control-API call, with who asked."""

    command: str
    by: str
    time: datetime
    args: dict[str, Any] = field(default_factory=dict)


class Subscription:
    """One subscriber's bounded view of the event stream."""

    def __init__(self, bus: EventBus, maxsize: int, kinds: tuple[type, ...] | None) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self._kinds = kinds
        self.dropped = 0

    def offer(self, event: object) -> None:
        if self._kinds is not None and not isinstance(event, self._kinds):
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    async def get(self) -> Any:
        return await self._queue.get()

    def get_nowait(self) -> Any:
        return self._queue.get_nowait()

    def pending(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        self._bus.unsubscribe(self)

    async def __aiter__(self) -> AsyncIterator[Any]:
        while True:
            yield await self._queue.get()


class EventBus:
    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []

    def subscribe(
        self, maxsize: int = 10_000, kinds: tuple[type, ...] | None = None
    ) -> Subscription:
        subscription = Subscription(self, maxsize, kinds)
        self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)

    def publish(self, event: object) -> None:
        for subscription in self._subscriptions:
            subscription.offer(event)
