"""Reconciliation: what the broker shows, matched with what the engine believes.

`plan` is a pure function: a broker snapshot, the engine's unfinished orders, the orders being
written right now, what it knows of orders missing at the broker, and the time → a `Plan` of
status changes, orders to adopt, fills to record and the differences to tell. `Reconciler`
takes the snapshot, applies the plan through the one owner of each state (order statuses
through OrderManager.transition), and journals and publishes the result.

Absence is no proof. An order the broker does not show may be held by a gateway that lost IB's
servers, or still in flight across a drop or a restart: it stays UNKNOWN, blocking its symbol,
until executions settle it, or until IB's servers have been up, with no trace of it and no
change in its symbol's position, for a whole grace period.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime

from engine.clock import BrokerClock
from engine.domain import ORDER_REF_PREFIX, Fill, Order, OrderStatus, OrderType
from engine.events import Difference, DifferenceKind, Level, ReconcileEvent
from engine.fills import Fills
from engine.journal import Journal
from engine.journal_rows import fill_stmt, insert_order_stmt, update_order_stmt
from engine.orders import OrderManager
from engine.portfolio import Portfolio
from engine.ports import BrokerOrder, BrokerPort, BrokerSnapshot
from engine.recorder import Recorder
from engine.tasks import TaskOwner

log = logging.getLogger(__name__)

# An order sent but not found at the broker stays "unknown" this long before it is written off.
NO_TRACE_GRACE_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class NoTrace:
    """An order sent but not found at the broker: since when, and the symbol's position then."""

    since: float  # monotonic
    position: float


@dataclass(frozen=True, slots=True)
class Servers:
    """IB's servers as the gateway reports them, for judging an order's absence."""

    lost: bool
    up_since: float | None  # monotonic; None while lost or not set up


@dataclass(frozen=True, slots=True)
class Change:
    """A status (and what comes with it) the broker's view gives one of our orders."""

    order_ref: str
    status: OrderStatus
    filled: float | None = None
    message: str | None = None
    ib_order_id: int | None = None
    perm_id: int | None = None


@dataclass(slots=True)
class Plan:
    changes: list[Change] = field(default_factory=list)
    adopt: list[BrokerOrder] = field(default_factory=list)  # ours, open, not journaled
    # Executions with the bot's orderRef of an order neither tracked nor journaled nor adopted
    # now: nothing explains them (the journal lost something, or another program used the
    # prefix). Journaled all the same (the broker's word), and trading fails closed.
    unexplained: list[Fill] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)  # the bot's executions the broker shows
    no_trace: dict[str, NoTrace] = field(default_factory=dict)  # what stays missing
    recheck: bool = False  # something is still unknown: look again after the grace period
    differences: list[Difference] = field(default_factory=list)
    adopted: int = 0


def plan(
    snapshot: BrokerSnapshot,
    unfinished: Mapping[str, Order],
    *,
    client_id: int,
    journaled: Collection[str],
    no_trace: Mapping[str, NoTrace],
    servers: Servers,
    now: float,
    grace: float,
) -> Plan:
    """What to change so the engine agrees with the broker.

    `unfinished`: the engine's unfinished orders (none being written right now) by ref;
    `journaled`: which of the broker's open bot orders the journal knows; `no_trace`: orders
    missing at earlier reconciliations; `now`: monotonic seconds.
    """
    result = Plan()
    positions = {p.symbol: p.quantity for p in snapshot.positions}
    open_by_ref = {o.order_ref: o for o in snapshot.open_orders if o.order_ref}
    done_by_ref = {o.order_ref: o for o in snapshot.completed_orders if o.order_ref}
    fills_by_ref: dict[str, list[Fill]] = {}
    for fill in snapshot.fills:
        fills_by_ref.setdefault(fill.order_ref, []).append(fill)

    for ref, order in unfinished.items():
        executed = sum(f.quantity for f in fills_by_ref.get(ref, ()))
        if ref in open_by_ref:
            found = open_by_ref[ref]
            result.changes.append(Change(ref, found.status, found.filled, "",
                                         found.ib_order_id, found.perm_id))
            result.adopted += 1
        elif ref in done_by_ref:
            found = done_by_ref[ref]
            # Completed orders carry no filled quantity: the executions tell it.
            result.changes.append(Change(ref, found.status, max(found.filled, executed),
                                         perm_id=found.perm_id or None))
            result.differences.append(Difference(DifferenceKind.DONE_WHILE_AWAY, ref,
                                                 order.symbol, status=found.status))
        elif ref in fills_by_ref:
            if executed >= order.quantity - 1e-9:
                result.changes.append(Change(ref, OrderStatus.FILLED, executed))
                result.differences.append(Difference(DifferenceKind.FILLED_WHILE_AWAY, ref,
                                                     order.symbol))
            else:  # the rest may still be working somewhere the broker does not list
                message = f"{executed:g} of {order.quantity:g} filled; rest unknown"
                result.changes.append(Change(ref, OrderStatus.UNKNOWN, executed, message))
                result.differences.append(Difference(
                    DifferenceKind.PARTLY_FILLED, ref, order.symbol, filled=executed,
                    quantity=order.quantity,
                ))
                result.recheck = True
        else:
            _judge_absence(result, order, positions.get(order.symbol, 0.0), no_trace.get(ref),
                           servers, now, grace)

    for ref, found in open_by_ref.items():
        if not ref.startswith(ORDER_REF_PREFIX) or ref in unfinished:
            continue
        if found.client_id != client_id:
            # Only the placing client can modify or cancel it, and only it hears its fills.
            result.differences.append(Difference(
                DifferenceKind.OTHER_CLIENT, ref, found.symbol, client_id=found.client_id,
                our_client_id=client_id,
            ))
        elif ref not in journaled:
            result.adopt.append(found)
            result.adopted += 1
            result.differences.append(Difference(DifferenceKind.NOT_JOURNALED, ref,
                                                 found.symbol))

    result.fills = [f for f in snapshot.fills if f.order_ref.startswith(ORDER_REF_PREFIX)]
    adopted = {found.order_ref for found in result.adopt}
    for fill in result.fills:
        ref = fill.order_ref
        if ref not in unfinished and ref not in journaled and ref not in adopted:
            result.unexplained.append(fill)
    for ref in dict.fromkeys(f.order_ref for f in result.unexplained):
        symbol = next(f.symbol for f in result.unexplained if f.order_ref == ref)
        result.differences.append(Difference(DifferenceKind.UNKNOWN_ORDER_EXECUTION, ref,
                                             symbol))
    return result


def _judge_absence(
    result: Plan, order: Order, position: float, missing: NoTrace | None, servers: Servers,
    now: float, grace: float,
) -> None:
    """No open order, no completed order, no execution: unknown until proven gone."""
    ref = order.order_ref
    if missing is None:
        result.differences.append(Difference(DifferenceKind.NOT_SEEN, ref, order.symbol))
    if missing is None or missing.position != position:
        missing = NoTrace(now, position)
    if _absence_settles(missing, servers, now, grace):
        result.changes.append(Change(ref, OrderStatus.CANCELLED,
                                     message="no trace at the broker; not working"))
        result.differences.append(Difference(DifferenceKind.NO_TRACE, ref, order.symbol))
        return
    message = ("sent while IB's servers were away; waits for IB" if servers.lost
               else "sent, not seen at the broker yet")
    result.changes.append(Change(ref, OrderStatus.UNKNOWN, message=message))
    result.no_trace[ref] = missing
    result.recheck = True


def _absence_settles(missing: NoTrace, servers: Servers, now: float, grace: float) -> bool:
    """IB's servers up, and no trace of it, no change in its position, for a whole grace."""
    if servers.up_since is None or servers.lost:
        return False
    return now - max(missing.since, servers.up_since) >= grace


def order_from_broker(found: BrokerOrder, now: datetime) -> Order:
    """Our own order, found at the broker but not in the journal (sent by a run that died
    before it journaled the answer), as the engine tracks it from now on."""
    known_type = found.order_type in OrderType._value2member_map_
    return Order(
        order_ref=found.order_ref, symbol=found.symbol, side=found.side,
        quantity=found.quantity,
        order_type=OrderType(found.order_type) if known_type else OrderType.MARKET,
        limit_price=found.limit_price, stop_price=found.stop_price,
        reason="adopted from the broker", status=found.status, filled=found.filled,
        ib_order_id=found.ib_order_id, perm_id=found.perm_id, created_at=now,
    )


def _as_data(difference: Difference) -> dict[str, object]:
    """A difference for the journal's details: its fields, enums as their values."""
    return asdict(difference, dict_factory=lambda items: {
        key: value.value if isinstance(value, enum.Enum) else value for key, value in items
    })


class Reconciler:
    """Takes the broker's snapshot, plans, and applies the plan; one run at a time."""

    def __init__(
        self,
        broker: BrokerPort,
        journal: Journal,
        orders: OrderManager,
        portfolio: Portfolio,
        fills: Fills,
        recorder: Recorder,
        clock: BrokerClock,
        tasks: TaskOwner,
        servers: Callable[[], Servers],
        grace: float = NO_TRACE_GRACE_SECONDS,
    ) -> None:
        self._broker = broker
        self._journal = journal
        self._orders = orders
        self._portfolio = portfolio
        self._fills = fills
        self._recorder = recorder
        self._clock = clock
        self._tasks = tasks
        self._servers = servers
        self.grace = grace
        self._no_trace: dict[str, NoTrace] = {}
        self._lock = asyncio.Lock()
        # Told after every reconciliation, with the executions the broker showed (none while
        # IB's servers are lost: its list then proves nothing).
        self.after: Callable[[tuple[Fill, ...]], None] | None = None
        # Told the executions nothing explains (engine: the position audit fails closed).
        self.on_unexplained: Callable[[list[Fill]], None] | None = None
        self._recheck: asyncio.Future[None] | None = None

    async def reconcile(self) -> list[Difference]:
        """Match the journal with the broker: adopt orders, recover fills, settle unknowns.

        One at a time: ib_async keeps one answer per kind of order request, so two
        overlapping snapshots would leave one of them waiting forever.
        """
        async with self._lock:
            differences, shown = await self._reconcile()
        if self.after is not None:
            self.after(shown)
        return differences

    async def _reconcile(self) -> tuple[list[Difference], tuple[Fill, ...]]:
        snapshot = await self._broker.snapshot()
        servers = self._servers()
        self._portfolio.replace_positions(list(snapshot.positions))
        self._portfolio.account_values.update(snapshot.account_values)
        # Memory is newer than the journal (whose copy may still miss a status queued for
        # disk), and every unfinished order is in memory: the journal's were loaded at start.
        orders = self._orders
        unfinished = {ref: o for ref, o in orders.orders.items()
                      if not o.status.is_done and ref not in orders.sending}
        # The broker's bot orders (open, completed, executed) the engine can account for:
        # tracked, or journaled (each looked up in the journal once).
        known: dict[str, Order] = {}
        shown = [o.order_ref for o in (*snapshot.open_orders, *snapshot.completed_orders)]
        for ref in dict.fromkeys([*shown, *(f.order_ref for f in snapshot.fills)]):
            if ref.startswith(ORDER_REF_PREFIX):
                order = orders.orders.get(ref) or await self._journal.order(ref)
                if order is not None:
                    known[ref] = order
        journaled = set(orders.orders) | set(known)
        # A cancel inferred (no trace for a whole grace period) can be wrong: an order the
        # broker now shows alive or executed is reconciled again, from memory or the journal.
        unfinished.update(self._written_off_but_alive(snapshot, unfinished, known))
        result = plan(snapshot, unfinished, client_id=self._broker.client_id,
                      journaled=journaled, no_trace=self._no_trace, servers=servers,
                      now=time.monotonic(), grace=self.grace)
        await self._apply(result, unfinished)
        await self._recorder.record_durable(
            Level.WARNING if result.differences else Level.INFO, "reconcile",
            f"reconciled: {result.adopted} order(s) adopted, "
            f"{len(result.differences)} difference(s)",
            {"differences": [_as_data(d) for d in result.differences]},
            event=ReconcileEvent(tuple(result.differences), result.adopted, self._clock.now())
            if result.differences else None,
        )
        return result.differences, () if servers.lost else snapshot.fills

    def _written_off_but_alive(
        self, snapshot: BrokerSnapshot, unfinished: Mapping[str, Order],
        known: Mapping[str, Order],
    ) -> dict[str, Order]:
        """The bot's orders known as cancelled that the broker shows open, completed other
        than cancelled, or executed beyond what is known filled; tracked from now on."""
        open_refs = {o.order_ref for o in snapshot.open_orders}
        done = {o.order_ref: o.status for o in snapshot.completed_orders}
        executed: dict[str, float] = {}
        for fill in snapshot.fills:
            executed[fill.order_ref] = executed.get(fill.order_ref, 0.0) + fill.quantity
        alive: dict[str, Order] = {}
        for ref in dict.fromkeys([*open_refs, *done, *executed]):
            if ref in unfinished:
                continue
            order = known.get(ref)
            if order is None or order.status is not OrderStatus.CANCELLED:
                continue
            shown_done = done.get(ref, OrderStatus.CANCELLED)
            if (ref in open_refs or shown_done is OrderStatus.FILLED
                    or executed.get(ref, 0.0) > order.filled + 1e-9):
                if self._orders.orders.get(ref) is not order:
                    self._orders.adopt(order)
                alive[ref] = order
        return alive

    async def _apply(self, result: Plan, unfinished: Mapping[str, Order]) -> None:
        orders = self._orders
        for change in result.changes:
            order = unfinished[change.order_ref]
            orders.transition(order, change.status, filled=change.filled,
                              message=change.message)
            order.ib_order_id = change.ib_order_id or order.ib_order_id
            order.perm_id = change.perm_id or order.perm_id
            # Through the writer, after any older status of this order still queued there.
            await self._recorder.write_durable(update_order_stmt(
                order.order_ref, order.status, ib_order_id=order.ib_order_id,
                perm_id=order.perm_id,
            ))
        for found in result.adopt:
            order = order_from_broker(found, self._clock.now())
            orders.adopt(order)  # first: a status arriving while it is journaled applies
            await self._recorder.write_durable(insert_order_stmt(order))
        self._no_trace = result.no_trace
        recovered = 0
        for fill in result.fills:
            orders.mark_seen(fill.exec_id)
            # Through the writer, so a commission report arriving later lands after it.
            if await self._recorder.write_durable(fill_stmt(fill)) == 1:
                recovered += 1
                self._fills.count_recovered(fill)
        if recovered:
            result.differences.append(Difference(DifferenceKind.FILLS_RECOVERED,
                                                 count=recovered))
        if result.recheck:
            self.schedule_recheck()
        if result.unexplained:
            await self._journal_unexplained(result.unexplained)
            if self.on_unexplained is not None:
                self.on_unexplained(list(result.unexplained))

    async def _journal_unexplained(self, fills: list[Fill]) -> None:
        """An order row for each: the journal accounts for what the broker did, and the next
        reconciliation does not pause again for what an operator has been told."""
        for ref in dict.fromkeys(f.order_ref for f in fills):
            mine = [f for f in fills if f.order_ref == ref]
            order = Order(
                order_ref=ref, symbol=mine[0].symbol, side=mine[0].side,
                quantity=sum(f.quantity for f in mine), status=OrderStatus.FILLED,
                filled=sum(f.quantity for f in mine),
                reason="executed at the broker; the journal never had this order",
                created_at=self._clock.now(),
            )
            self._orders.adopt(order)
            await self._recorder.write_durable(insert_order_stmt(order))

    def adopt_working(self) -> int:
        """Track the bot's orders the broker connection shows open but the engine does not
        (yet): after a restart, before reconciliation adopted them. Returns how many."""
        adopted = 0
        orders = self._orders
        for found in self._broker.working_orders():
            ref = found.order_ref
            if not ref.startswith(ORDER_REF_PREFIX):
                continue
            known = orders.orders.get(ref)
            if known is None:
                orders.adopt(order_from_broker(found, self._clock.now()))
                adopted += 1
            elif known.status is OrderStatus.UNKNOWN:  # the broker shows it: it is working
                orders.transition(known, found.status, filled=max(known.filled, found.filled),
                                  message="")
                known.ib_order_id = found.ib_order_id or known.ib_order_id
        return adopted

    def schedule_recheck(self) -> None:
        """Reconcile again after the grace period, until no order is missing any more."""
        if self._recheck is not None and not self._recheck.done():
            return

        async def recheck() -> None:
            # A reconcile run from here cannot schedule the next check itself.
            while True:
                await asyncio.sleep(self.grace)
                if self._broker.is_connected:
                    try:
                        await self.reconcile()
                    except (ConnectionError, TimeoutError) as exc:
                        log.warning("order recheck failed: %s", exc)
                if not self._no_trace:
                    return

        self._recheck = self._tasks.spawn(recheck(), "order recheck")
