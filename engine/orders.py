"""Order management: write-ahead journaling, one order per intent, broker answers applied.

Every order gets an `orderRef` (ORDER_REF_PREFIX + a unique id) and is journaled as an intent
before placeOrder goes out. Broker answers update the in-memory order at once and are journaled
in arrival order by the journal writer. An order whose outcome is unknown is never re-sent.

This is the one owner of order state: every status change goes through `transition`, which
applies only what the table in engine/order_states.py allows. Memory holds the orders not done
and those done for less than DONE_ORDER_RETENTION (engine/retention.py); older ones are in the
journal only, where every lookup of an order not in memory falls back to.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import datetime

from engine.clock import BrokerClock
from engine.domain import (
    ORDER_REF_PREFIX,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
)
from engine.events import Level, OrderEvent, OrderEventKind
from engine.journal_rows import (
    fill_commission_stmt,
    fill_stmt,
    insert_order_stmt,
    order_event_stmt,
    update_order_stmt,
)
from engine.order_states import allowed
from engine.ports import BrokerPort
from engine.recorder import Recorder
from engine.retention import DONE_ORDER_RETENTION, EXEC_ID_RETENTION, Expiring

log = logging.getLogger(__name__)

KILL_SWITCH_JOURNAL_SECONDS = 2.0


def new_order_ref() -> str:
    return f"{ORDER_REF_PREFIX}{uuid.uuid4().hex[:16]}"


class OrderManager:
    def __init__(
        self,
        broker: BrokerPort,
        recorder: Recorder,
        clock: BrokerClock,
        ib_servers_lost: Callable[[], bool] = lambda: False,
    ) -> None:
        self._broker = broker
        self._recorder = recorder
        self._writer = recorder.writer
        self._clock = clock
        self._ib_servers_lost = ib_servers_lost
        # The orders of this run and adopted ones, but for those done a while ago (journal).
        self.orders: dict[str, Order] = {}
        self._working: dict[str, Order] = {}  # those not done, kept by transition()
        self._done: Expiring[str] = Expiring(DONE_ORDER_RETENTION)  # done since (broker time)
        self._seen_exec_ids: Expiring[str] = Expiring(EXEC_ID_RETENTION)
        self.sending: set[str] = set()  # intents being written, not yet placed
        self.halt_reason: str | None = None  # set while the kill switch runs
        self._changed: asyncio.Event | None = None  # set (and replaced) on every status change

    # --- queries ------------------------------------------------------------------------

    def working(self, symbol: str | None = None) -> list[Order]:
        return [
            order
            for order in self._working.values()
            if symbol is None or order.symbol == symbol
        ]

    def has_working(self, symbol: str) -> bool:
        return any(
            order.symbol == symbol and order.parent_ref is None
            for order in self._working.values()
        )

    def _track(self, order: Order) -> None:
        self.orders[order.order_ref] = order
        self._index(order)

    def _index(self, order: Order) -> None:
        """Keep the index of working orders and the times orders were done (a done order can
        come back: see the table)."""
        ref = order.order_ref
        if self.orders.get(ref) is not order:  # a stale copy's ref
            return
        if order.status.is_done:
            self._working.pop(ref, None)
            now = self._clock.now()
            self._forget_done(now)
            self._done.note(ref, now)
        else:
            self._working[ref] = order
            self._done.discard(ref)

    def _forget_done(self, now: datetime) -> None:
        """Drop from memory the orders done longer than the retention: the journal has them.
        Not while the journal is failing: it may lack their last status."""
        if self._writer.failures:
            return
        for ref in self._done.expire(now):
            order = self.orders.get(ref)
            if order is None or not order.status.is_done:
                continue
            if ref in self.sending:  # its sender still holds it: later
                self._done.note(ref, now)
                continue
            del self.orders[ref]

    def outcome_unknown(self, order: Order) -> bool:
        """Sent, and whether it is at IB or will fill cannot be known yet: unknown since a
        drop or restart, or waiting for an answer while IB's servers are away."""
        return order.status is OrderStatus.UNKNOWN or (
            order.status is OrderStatus.PENDING and self._ib_servers_lost()
        )

    # --- the one place an order's status changes ------------------------------------------

    def transition(
        self,
        order: Order,
        status: OrderStatus,
        *,
        message: str | None = None,
        filled: float | None = None,
    ) -> bool:
        """Move `order` to `status` if the table allows it; an impossible transition is
        logged and journaled, never applied. Wakes everyone waiting on order changes."""
        if not allowed(order.status, status):
            text = (f"{order.order_ref} {order.symbol}: {order.status.value} -> {status.value} "
                    "is not a possible transition; not applied")
            log.warning("%s", text)
            self._recorder.record(Level.WARNING, "order_state", text, {
                "order_ref": order.order_ref, "from": order.status.value, "to": status.value,
            })
            return False
        order.status = status
        self._index(order)
        if filled is not None:  # what is filled never goes down: executions are never undone
            order.filled = max(order.filled, filled)
        if message is not None:
            order.message = message
        self.notify_changed()
        return True

    # --- placing ------------------------------------------------------------------------

    def prepare(
        self,
        symbol: str,
        side: Side,
        quantity: float,
        reason: str,
        order_type: OrderType = OrderType.MARKET,
        limit_price: float | None = None,
        stop_price: float | None = None,
        parent: Order | None = None,
    ) -> Order:
        """Create and register an order at once (so it counts as working from now on)."""
        order = Order(
            order_ref=new_order_ref(),
            symbol=symbol,
            side=side,
            quantity=quantity,
            order_type=order_type,
            limit_price=limit_price,
            stop_price=stop_price,
            reason=reason,
            status=OrderStatus.INTENT,
            parent_ref=parent.order_ref if parent else None,
            created_at=self._clock.now(),
        )
        self._track(order)
        return order

    def abandon(self, order: Order, reason: str) -> None:
        """Drop a prepared order that was never sent (a sender still writing it will not send
        it)."""
        if order.status in (OrderStatus.INTENT, OrderStatus.CANCELLED):
            self.transition(order, OrderStatus.CANCELLED,
                            message=order.message or f"not sent: {reason}")

    def abandon_unsent(self, reason: str, keep_kill_switch: bool = False) -> None:
        """Orders decided but not sent yet will not be sent on what is now old data (the kill
        switch's closes still go when only IB's servers are away: the gateway holds them)."""
        for order in self.working():
            if order.status is OrderStatus.INTENT and not (
                keep_kill_switch and order.is_kill_switch
            ):
                self.abandon(order, reason)

    def lost_in_flight(self) -> None:
        """The connection dropped: an order sent without an answer yet has an unknown outcome
        until reconciliation (it is never sent again)."""
        for order in self.working():
            if order.status is OrderStatus.PENDING:
                self.transition(order, OrderStatus.UNKNOWN)
        self.notify_changed()

    def send_soon(
        self,
        order: Order,
        *,
        parent: Order | None = None,
        transmit: bool = True,
        oca_group: str = "",
        outside_rth: bool = False,
    ) -> asyncio.Future[Order]:
        """Journal the intent durably, and place the order the moment it is on disk.

        Write-ahead: nothing is sent before its intent is committed. While the disk is fast
        the commit happens here and the order is placed before this returns, inside the
        caller's callback (a bar's); otherwise the writer's thread commits it and the order
        is placed one loop turn after, with no task in between (JournalWriter.commit_then).
        The future is the order once placed (or dropped).
        """
        sent: asyncio.Future[Order] = asyncio.get_running_loop().create_future()
        self.sending.add(order.order_ref)

        def written(outcome: int | BaseException) -> None:
            try:
                if isinstance(outcome, BaseException):
                    # Never sent without its intent on disk.
                    self.abandon(order, f"its intent could not be journaled ({outcome})")
                    sent.set_exception(outcome)
                else:
                    sent.set_result(self._after_intent(order, parent, transmit, oca_group,
                                                       outside_rth, kill_switch=False))
            except Exception as exc:
                sent.set_exception(exc)
            finally:
                self.sending.discard(order.order_ref)

        self._writer.commit_then(insert_order_stmt(order), written)
        return sent

    async def send(
        self,
        order: Order,
        *,
        parent: Order | None = None,
        transmit: bool = True,
        oca_group: str = "",
        outside_rth: bool = False,
        kill_switch: bool = False,
    ) -> Order:
        """Journal the intent durably, then place it with the broker (see send_soon).

        While the kill switch holds (`halt_reason`), only its own orders go out: an order
        whose intent was being written when it fired is dropped, not sent after it. The kill
        switch's own orders wait only so long for the journal.
        """
        if not kill_switch:
            return await self.send_soon(order, parent=parent, transmit=transmit,
                                        oca_group=oca_group, outside_rth=outside_rth)
        self.sending.add(order.order_ref)
        try:
            written = asyncio.ensure_future(self._writer.write_durable(insert_order_stmt(order)))
            await self._journal_or_go_on(written, order)
            return self._after_intent(order, parent, transmit, oca_group, outside_rth,
                                      kill_switch=True)
        finally:
            self.sending.discard(order.order_ref)

    def _after_intent(
        self,
        order: Order,
        parent: Order | None,
        transmit: bool,
        oca_group: str,
        outside_rth: bool,
        kill_switch: bool,
    ) -> Order:
        """The intent is on disk: place the order, unless it was dropped meanwhile."""
        halted = self.halt_reason is not None and not kill_switch
        if order.status is not OrderStatus.INTENT or halted:
            self.abandon(order, self.halt_reason or order.message or "abandoned")
            self._recorder.write(update_order_stmt(order.order_ref, OrderStatus.CANCELLED))
            return order
        return self._place(order, parent, transmit, oca_group, outside_rth)

    @staticmethod
    async def _journal_or_go_on(written: asyncio.Future[int], order: Order) -> None:
        """The kill switch waits only so long for the journal: a full or failing disk must not
        keep positions open. The intent is still written when the disk allows."""
        done, _ = await asyncio.wait({written}, timeout=KILL_SWITCH_JOURNAL_SECONDS)
        if not done:
            log.error("journal not writable; kill-switch order %s sent without its intent "
                      "on disk", order.order_ref)
        elif written.exception() is not None:
            log.error("journaling kill-switch order %s failed: %s", order.order_ref,
                      written.exception())

    def _place(
        self,
        order: Order,
        parent: Order | None,
        transmit: bool,
        oca_group: str,
        outside_rth: bool,
    ) -> Order:
        try:
            order.ib_order_id = self._broker.place(
                order,
                parent_id=parent.ib_order_id or 0 if parent else 0,
                transmit=transmit,
                oca_group=oca_group,
                outside_rth=outside_rth,
            )
        except ConnectionError as exc:
            # Nothing left this process: the order is known not to be at the broker.
            self.transition(order, OrderStatus.CANCELLED, message=f"not sent: {exc}")
            self._recorder.write(update_order_stmt(order.order_ref, OrderStatus.CANCELLED))
            self._recorder.publish(OrderEvent(order, OrderEventKind.REJECTED, order.message))
            return order
        if order.status is OrderStatus.INTENT:  # an answer may already have arrived
            self.transition(order, OrderStatus.PENDING)
        ib_order_id = order.ib_order_id
        self._recorder.write(
            update_order_stmt(order.order_ref, order.status, ib_order_id=ib_order_id)
        )
        return order

    async def submit(
        self,
        symbol: str,
        side: Side,
        quantity: float,
        reason: str,
        order_type: OrderType = OrderType.MARKET,
        limit_price: float | None = None,
        stop_price: float | None = None,
        *,
        parent: Order | None = None,
        transmit: bool = True,
        oca_group: str = "",
        outside_rth: bool = False,
        kill_switch: bool = False,
    ) -> Order:
        """Prepare and send one order. The returned order is tracked from then on."""
        order = self.prepare(
            symbol, side, quantity, reason, order_type, limit_price, stop_price, parent
        )
        return await self.send(
            order, parent=parent, transmit=transmit, oca_group=oca_group,
            outside_rth=outside_rth, kill_switch=kill_switch,
        )

    def cancel(self, order_ref: str) -> bool:
        order = self.orders.get(order_ref)
        return self._broker.cancel(order_ref, order.ib_order_id if order else None)

    def modify(
        self,
        order_ref: str,
        quantity: float | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
    ) -> bool:
        order = self.orders.get(order_ref)
        if order is None or order.status.is_done:
            return False
        if not self._broker.modify(order_ref, quantity, limit_price, stop_price):
            return False
        if quantity is not None:
            order.quantity = quantity
        if limit_price is not None:
            order.limit_price = limit_price
        if stop_price is not None:
            order.stop_price = stop_price
        self._recorder.write(
            update_order_stmt(
                order_ref, order.status, quantity=quantity, limit_price=limit_price,
                stop_price=stop_price,
            )
        )
        return True

    async def wait_done(self, order_refs: list[str], timeout: float) -> bool:
        """Wait until every order is filled, cancelled or rejected; False on timeout."""
        orders = [self.orders[ref] for ref in order_refs if ref in self.orders]
        return await self.wait_until(lambda: all(o.status.is_done for o in orders), timeout)

    async def wait_status(
        self, order_ref: str, statuses: set[OrderStatus], timeout: float
    ) -> bool:
        """Wait until an order reaches one of `statuses` (or any final one); False unless it
        reached one of `statuses` in time."""
        order = self.orders[order_ref]
        await self.wait_until(
            lambda: order.status in statuses or order.status.is_done, timeout
        )
        return order.status in statuses

    async def wait_until(self, reached: Callable[[], bool], timeout: float) -> bool:
        """Wait until `reached()` holds, tested at every order status change; False on timeout."""
        async def wait() -> None:
            while not reached():
                changed = self._changed = self._changed or asyncio.Event()
                await changed.wait()

        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            return False
        return True

    def notify_changed(self) -> None:
        """Wake everyone waiting for an order's state to change (also after a change made
        outside this class: statuses marked unknown at a drop, IB's servers lost)."""
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    # --- broker answers -----------------------------------------------------------------

    def adopt(self, order: Order) -> None:
        """Track an order found at the broker after a (re)connect (in the status it has
        there), or one the journal left unfinished (see adopt_unfinished)."""
        self._track(order)
        self.notify_changed()

    def adopt_unfinished(self, order: Order, message: str) -> None:
        """Track an order the journal left unfinished: of unknown outcome until the broker
        shows it (an intent too: the last run may have sent it)."""
        self._track(order)
        self.transition(order, OrderStatus.UNKNOWN, message=message)

    def on_update(self, update: OrderUpdate, symbol: str) -> None:
        order = self.orders.get(update.order_ref)
        if order is None:
            log.warning("status for unknown order %s (%s)", update.order_ref, symbol)
            return
        previous = order.status
        more_filled = update.filled > order.filled
        if not self.transition(order, update.status, filled=max(order.filled, update.filled)):
            return  # a late status after a final one (logged and journaled there)
        order.avg_price = update.avg_price or order.avg_price
        order.ib_order_id = update.ib_order_id or order.ib_order_id
        order.perm_id = update.perm_id or order.perm_id
        order.updated_at = update.time
        order.message = update.message
        if update.status is previous and not more_filled:  # a repeat: nothing new to journal
            return
        self._recorder.write(order_event_stmt(update))
        self._recorder.write(
            update_order_stmt(
                update.order_ref, update.status, ib_order_id=update.ib_order_id,
                perm_id=update.perm_id,
            )
        )
        if update.status is OrderStatus.REJECTED:
            self._recorder.publish(OrderEvent(order, OrderEventKind.REJECTED, update.message))
        elif update.status is OrderStatus.CANCELLED:
            self._recorder.publish(OrderEvent(order, OrderEventKind.CANCELLED, update.message))

    def on_fill(self, fill: Fill) -> bool:
        """Journal a fill once; return False for an exec_id already seen (within the
        retention: a live duplicate comes the same day, reconciliation's recovered fills are
        deduplicated by the journal)."""
        if fill.exec_id in self._seen_exec_ids:
            return False
        self.mark_seen(fill.exec_id)
        self._recorder.write(fill_stmt(fill))
        return True

    def on_commission(self, exec_id: str, commission: float, realized_pnl: float | None) -> None:
        self._recorder.write(fill_commission_stmt(exec_id, commission, realized_pnl))

    def mark_seen(self, exec_id: str) -> None:
        now = self._clock.now()
        self._seen_exec_ids.note(exec_id, now)
        self._seen_exec_ids.expire(now)

