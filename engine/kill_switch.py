"""The kill switch: /flatten and /cancelall.

Flatten pauses at once, cancels the working orders, waits for fills that raced the cancels to
show in the positions, closes every position with a market order and waits for the fills. It
acts first and journals on the side: a journal that cannot be written must neither stop nor
slow it. It never closes a symbol twice: not beside an order of unknown outcome (it may still
fill), not beside a close of an earlier /flatten, not while a fill is not in the positions yet.
A cancel-all never cancels the kill switch's own closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Container

from engine.domain import KILL_SWITCH_REASON, EngineState, Order, OrderStatus, Position, Side
from engine.fills import Fills
from engine.orders import KILL_SWITCH_JOURNAL_SECONDS, OrderManager
from engine.ports import BrokerPort
from engine.reports import (
    CancelReport,
    ClosedPosition,
    FlattenReport,
    NotCancelled,
    NotCancelledReason,
    NotClosed,
    NotClosedReason,
    OrderSummary,
    WaitingForIB,
    WaitingKind,
)
from engine.risk import RiskManager
from engine.tasks import TaskOwner
from engine.trading_state import TradingState

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str], Awaitable[None]]

CANCEL_WAIT_SECONDS = 10.0
POSITION_SETTLE_SECONDS = 2.0
FLATTEN_WAIT_SECONDS = 30.0


class KillSwitch:
    def __init__(
        self,
        broker: BrokerPort,
        orders: OrderManager,
        fills: Fills,
        risk: RiskManager,
        trading_state: TradingState,
        tasks: TaskOwner,
        traded: Container[str],
        adopt_unknown_working: Callable[[], int],
    ) -> None:
        self._broker = broker
        self._orders = orders
        self._fills = fills
        self._risk = risk
        self._trading_state = trading_state
        self._tasks = tasks
        self._traded = traded
        self._adopt_unknown_working = adopt_unknown_working
        self._lock = asyncio.Lock()
        self.flattening = False  # while true the strategy places nothing

    @property
    def busy(self) -> bool:
        """A flatten or a cancel-all is running (or waiting for one)."""
        return self._lock.locked()

    async def cancel_all(self, scope: str) -> CancelReport:
        """Cancel the bot's (or the account's) orders; waits for a running flatten first, so
        it can never cancel the kill switch's own closing orders."""
        async with self._lock:
            return await self._cancel(scope, flattening=False)

    async def flatten(
        self, by: str, scope: str, progress: ProgressCallback | None = None
    ) -> FlattenReport:
        """Pause; cancel the orders; close the positions with market orders; wait for fills.

        A second call while one runs waits for it and then finds nothing (or what is left) to
        do; calling it when flat is harmless.
        """
        async with self._lock:
            self.flattening = True
            self._orders.halt_reason = f"flatten by {by} in progress"
            try:
                return await self._flatten(by, scope, progress)
            finally:
                self.flattening = False
                self._orders.halt_reason = None

    async def _cancel(self, scope: str, flattening: bool) -> CancelReport:
        """Cancel the working orders, never the kill switch's own closes (a /cancelall must not
        undo a /flatten); while flattening, orders of unknown outcome are left to its report."""
        orders = self._orders
        self._adopt_unknown_working()  # e.g. before the first reconciliation after a restart
        closes, working = [], []
        for order in orders.working():
            (closes if order.is_kill_switch else working).append(order)
        # IB's global cancel would cancel the kill switch's closes too: while any is out, only
        # the bot's own orders are cancelled, one by one, and the report says so.
        global_cancel = scope == "account" and not closes
        refs = []
        for order in working:
            if order.status is OrderStatus.INTENT:
                orders.abandon(order, "cancelled before it was sent")  # its sender drops it
            elif not global_cancel and orders.cancel(order.order_ref):
                refs.append(order.order_ref)
        if global_cancel:
            if self._broker.is_connected:
                self._broker.global_cancel()  # every client's orders, and those placed by hand
            refs = [order.order_ref for order in working if not order.status.is_done]
        # No answer comes for an order of unknown outcome until IB is back: do not wait for it.
        refs = [ref for ref in refs if not orders.outcome_unknown(orders.orders[ref])]
        if not await orders.wait_done(refs, timeout=CANCEL_WAIT_SECONDS / 2):
            # Asked again, by id, for what is still working (seen once after restarts: a
            # protective order a single /cancelall left working); the same wait in all.
            for ref in refs:
                if (order := orders.orders.get(ref)) and not order.status.is_done:
                    orders.cancel(ref)
            await orders.wait_done(refs, timeout=CANCEL_WAIT_SECONDS / 2)
        cancelled = tuple(
            OrderSummary.of(o) for o in working if o.status is OrderStatus.CANCELLED
        )
        failed = tuple(
            NotCancelled(OrderSummary.of(o), NotCancelledReason.STILL_WORKING,
                         outcome_unknown=orders.outcome_unknown(o))
            for o in working
            if not o.status.is_done and not (flattening and orders.outcome_unknown(o))
        )
        if not flattening:
            failed += tuple(
                NotCancelled(OrderSummary.of(o), NotCancelledReason.KILL_SWITCH_CLOSE)
                for o in closes
            )
        if scope == "account" and not global_cancel:
            failed += (NotCancelled(None, NotCancelledReason.OTHER_PROGRAMS),)
        return CancelReport(scope, cancelled, failed)

    async def _flatten(
        self, by: str, scope: str, progress: ProgressCallback | None
    ) -> FlattenReport:
        orders = self._orders

        async def say(text: str) -> None:
            if progress is not None:
                await progress(text)

        self._risk.pause(f"flatten by {by}")  # at once
        persisted = self._tasks.aside(self._trading_state.persist(
            EngineState.PAUSED, f"flatten by {by}", by))
        # On disk before anything is cancelled or closed: a bot killed mid-flatten comes back
        # paused, not trading. A full or failing disk delays the kill switch only so long.
        await asyncio.wait({persisted}, timeout=KILL_SWITCH_JOURNAL_SECONDS)
        if not self._broker.is_connected:
            return FlattenReport(
                scope, (), (), (NotClosed(None, None, NotClosedReason.NOT_CONNECTED),),
                flat=False,
            )
        cancel = await self._cancel(scope, flattening=True)
        if cancel.cancelled:
            await say(f"cancelled {len(cancel.cancelled)} order(s)")
        # A fill that raced the cancel must show in the positions before they are closed.
        await self._fills.wait_positions_settled(POSITION_SETTLE_SECONDS)
        try:
            current = await self._broker.fresh_positions()
        except (ConnectionError, TimeoutError) as exc:
            log.warning("fresh positions unavailable (%s); using the last known", exc)
            current = self._broker.positions()
        positions = [
            p for p in current
            if p.quantity != 0 and (scope == "account" or p.symbol in self._traded)
        ]
        # An order whose outcome is unknown may still fill: a close beside it could close twice.
        # Its symbol waits for IB, and the report says so rather than invite another /flatten.
        still_working = {o.symbol: o for o in orders.working()}
        unknown = [o for o in still_working.values() if orders.outcome_unknown(o)]
        waiting = [_waiting(o, WaitingKind.OUTCOME_UNKNOWN) for o in unknown]
        waiting_symbols = {o.symbol for o in unknown}
        if not positions and not cancel.cancelled and not cancel.failed and not waiting:
            return FlattenReport(scope, (), (), (), flat=True, already_flat=True)
        not_closed: list[NotClosed] = []
        to_close = []
        for position in positions:
            if position.symbol in waiting_symbols:
                continue  # reported as waiting for IB
            if position.symbol in still_working:
                # Closing now could close twice: that order may still fill.
                working = still_working[position.symbol]
                reason = (NotClosedReason.EARLIER_CLOSE_WORKING if working.is_kill_switch
                          else NotClosedReason.ORDER_WORKING)
                not_closed.append(_not_closed(position, reason, working))
            elif self._fills.awaiting_position(position.symbol):
                # The broker has not shown a fill in this position yet: its size is not known.
                not_closed.append(_not_closed(position, NotClosedReason.FILL_NOT_IN_POSITIONS))
            elif await self._broker.ensure_contract(position.symbol):
                to_close.append(position)
            else:
                not_closed.append(_not_closed(position, NotClosedReason.NO_CONTRACT))
        sent = await asyncio.gather(*(
            orders.submit(
                p.symbol, Side.SELL if p.quantity > 0 else Side.BUY, abs(p.quantity),
                f"{KILL_SWITCH_REASON}{by}", outside_rth=True, kill_switch=True,
            )
            for p in to_close
        ))
        closing = []
        for position, order in zip(to_close, sent, strict=True):
            if order.status in (OrderStatus.CANCELLED, OrderStatus.REJECTED):
                not_closed.append(_not_closed(position, NotClosedReason.CLOSE_FAILED, order))
            else:  # working, or already filled while the others were being sent
                closing.append((position, order))
        if closing:
            await say("closing " + ", ".join(f"{p.symbol} {p.quantity:g}" for p, _ in closing))
        # Until each close is done, or its outcome can only be known once IB is back.
        await orders.wait_until(
            lambda: all(o.status.is_done or orders.outcome_unknown(o) for _, o in closing),
            FLATTEN_WAIT_SECONDS,
        )
        closed = []
        for position, order in closing:
            if order.status is OrderStatus.FILLED:
                closed.append(ClosedPosition(position.symbol, position.quantity, order.avg_price))
            elif orders.outcome_unknown(order):
                waiting.append(_waiting(order, WaitingKind.CLOSE_SENT))
            else:
                reason = (NotClosedReason.CLOSE_FAILED if order.status.is_done
                          else NotClosedReason.CLOSE_WORKING)
                not_closed.append(_not_closed(position, reason, order))
        return FlattenReport(scope, cancel.cancelled, tuple(closed), tuple(not_closed),
                             flat=not cancel.failed and not not_closed and not waiting,
                             waiting_for_ib=tuple(waiting), not_cancelled=cancel.failed)


_CLOSES = (NotClosedReason.CLOSE_FAILED, NotClosedReason.CLOSE_WORKING)


def _not_closed(
    position: Position, reason: NotClosedReason, order: Order | None = None
) -> NotClosed:
    """`order`: the order in the way, or the close that failed (its message, the broker's)."""
    summary = OrderSummary.of(order) if order is not None else None
    detail = order.message if reason in _CLOSES and order is not None else ""
    return NotClosed(position.symbol, position.quantity, reason, summary, detail)


def _waiting(order: Order, kind: WaitingKind) -> WaitingForIB:
    return WaitingForIB(OrderSummary.of(order), order.remaining, kind, order.message)
