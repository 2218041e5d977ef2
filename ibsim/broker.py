"""The simulated broker: order validation, the order book, working orders against the market
(the prices are `matching`'s), brackets, OCA groups, and fills booked into the accounts.

The broker speaks domain types only: it takes an ``OrderTicket`` and keeps ``SimOrder``s.
Everything the clients must be told goes out through a ``BrokerListener`` (the order fan-out,
which turns it into wire messages).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Protocol

from .account import Account, commission_for
from .clock import SimClock
from .conditions import ConditionError, all_met, check_supported
from .contracts import ContractSpec, Universe
from .market import Market, Quote, StepBar
from .matching import bar_price, quote_price
from .orders import (
    CANCELLED,
    FILLED,
    ORDER_TYPES,
    PRE_SUBMITTED,
    SUBMITTED,
    TIFS,
    Execution,
    OrderTicket,
    SimOrder,
)
from .pricepath import STEP
from .rhythm import GATEWAY_TZ
from .sessions import next_session

_EPS = 1e-9
NO_SECURITY = "No security definition has been found for the request"


class BrokerListener(Protocol):
    def order_changed(self, order: SimOrder, open_order: bool) -> None:
        """Tell the owner: openOrder (when ``open_order``) then orderStatus."""

    def order_filled(self, order: SimOrder, execution: Execution) -> None:
        """Tell the owner: execDetails, orderStatus, commissionReport; refresh accounts."""

    def order_error(self, client_id: int, order_id: int, code: int, message: str) -> None:
        """Send an error about one order to its client."""


class _Nobody:
    """The listener of a broker nobody listens to yet: its news is dropped."""

    def order_changed(self, order: SimOrder, open_order: bool) -> None:
        pass

    def order_filled(self, order: SimOrder, execution: Execution) -> None:
        pass

    def order_error(self, client_id: int, order_id: int, code: int, message: str) -> None:
        pass


class OrderRejected(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Broker:
    def __init__(
        self,
        universe: Universe,
        market: Market,
        clock: SimClock,
        accounts: dict[str, Account],
        listener: BrokerListener | None = None,
        time_zone: str = GATEWAY_TZ,
    ) -> None:
        self.universe = universe
        self.time_zone = time_zone  # the gateway's: a time condition without a zone is in it
        self.market = market
        self.clock = clock
        self.accounts = accounts
        # Told about every order change; the gateway connects the order fan-out once it exists.
        self.listener: BrokerListener = listener or _Nobody()
        self.orders: dict[int, SimOrder] = {}  # by permId
        self.by_key: dict[tuple[int, int], int] = {}  # (clientId, orderId) -> permId
        self.executions: list[Execution] = []
        self.next_perm_id = 1_000_001
        self.next_exec_seq = 1
        self.next_order_ids: dict[int, int] = {}
        self._working: dict[int, set[int]] = {}  # conId -> permIds that may trade
        self._children_of: dict[tuple[int, int], list[int]] = {}  # (client, parent id) -> perms
        self._conditional: set[int] = set()  # permIds held until their conditions are met
        self.reject_next: str | None = None  # fault: reject the next order with this reason

    # --- queries -------------------------------------------------------------------------------

    def next_order_id(self, client_id: int) -> int:
        return self.next_order_ids.get(client_id, 1)

    def get(self, client_id: int, order_id: int) -> SimOrder | None:
        perm = self.by_key.get((client_id, order_id))
        return self.orders.get(perm) if perm is not None else None

    def open_orders(self, client_id: int | None = None) -> list[SimOrder]:
        """Transmitted, not finished orders (of one client, or all)."""
        return [
            o
            for o in self.orders.values()
            if not o.is_done and not o.staged and (client_id is None or o.client_id == client_id)
        ]

    def completed_orders(self) -> list[SimOrder]:
        done = [o for o in self.orders.values() if o.is_done and not o.staged]
        return sorted(done, key=lambda o: (o.completed_at, o.perm_id))

    def working_con_ids(self) -> list[int]:
        return [c for c, perms in self._working.items() if perms]

    def has_conditional(self) -> bool:
        """Whether an order waits for its conditions (the clock must then be watched)."""
        return bool(self._conditional)

    # --- placing, modifying, cancelling ----------------------------------------------------------

    def place(self, client_id: int, ticket: OrderTicket) -> None:
        """Handle placeOrder: a new order, or a modification when the id is known."""
        self.next_order_ids[client_id] = max(self.next_order_id(client_id), ticket.order_id + 1)
        existing = self.get(client_id, ticket.order_id)
        try:
            if self.reject_next is not None:
                reason, self.reject_next = self.reject_next, None
                raise OrderRejected(201, f"Order rejected - reason:{reason}")
            if existing is not None:
                self._modify(existing, ticket)
            else:
                self._new(client_id, ticket)
        except OrderRejected as rej:
            self.listener.order_error(client_id, ticket.order_id, rej.code, rej.message)

    def _new(self, client_id: int, ticket: OrderTicket) -> None:
        spec = self.universe.resolve(ticket.contract)
        if spec is None or (spec.sec_type == "OPT" and spec.expired(self.clock.now())):
            raise OrderRejected(200, NO_SECURITY)
        account = ticket.account or next(iter(self.accounts))
        if account not in self.accounts:
            raise OrderRejected(201, f"Order rejected - reason:Account {account} is not managed")
        self.validate(spec, ticket)
        if ticket.parent_id and self.get(client_id, ticket.parent_id) is None:
            raise OrderRejected(
                201, f"Order rejected - reason:Parent order {ticket.parent_id} was not found"
            )
        order = SimOrder(
            perm_id=self.next_perm_id,
            client_id=client_id,
            order_id=ticket.order_id,
            account=account,
            con_id=spec.con_id,
            route_exchange=ticket.contract.exchange or spec.exchange,
            action=ticket.action,
            total_quantity=ticket.total_quantity,
            order_type=ticket.order_type,
        )
        self.next_perm_id += 1
        self._apply_fields(order, ticket)
        self._index(order)
        if not ticket.transmit:
            order.staged = True
            return
        self._transmit(order)

    def _apply_fields(self, order: SimOrder, ticket: OrderTicket) -> None:
        order.total_quantity = ticket.total_quantity
        order.order_type = ticket.order_type
        order.lmt_price = ticket.lmt_price
        order.aux_price = ticket.aux_price
        order.tif = ticket.tif or "DAY"
        order.oca_group = ticket.oca_group
        order.oca_type = ticket.oca_type
        order.order_ref = ticket.order_ref
        order.transmit = ticket.transmit
        order.parent_id = ticket.parent_id
        order.outside_rth = ticket.outside_rth
        order.trail_stop_price = ticket.trail_stop_price
        order.trailing_percent = ticket.trailing_percent
        order.conditions = ticket.conditions
        order.conditions_ignore_rth = ticket.conditions_ignore_rth
        order.conditions_cancel_order = ticket.conditions_cancel_order

    def validate(self, spec: ContractSpec, ticket: OrderTicket) -> None:
        def reject(reason: str) -> OrderRejected:
            return OrderRejected(201, f"Order rejected - reason:{reason}")

        if ticket.action not in ("BUY", "SELL"):
            raise reject(f"Invalid action '{ticket.action}' (must be BUY or SELL)")
        if not ticket.total_quantity or ticket.total_quantity <= 0:
            raise reject(f"The order quantity must be positive (got {ticket.total_quantity:g})")
        steps = ticket.total_quantity / spec.size_increment
        if abs(steps - round(steps)) > 1e-6:
            raise reject(
                f"The order quantity {ticket.total_quantity:g} is not a multiple of the size "
                f"increment {spec.size_increment:g}"
            )
        if ticket.order_type not in ORDER_TYPES:
            raise reject(f"Unsupported order type '{ticket.order_type}'")
        if (ticket.tif or "DAY") not in TIFS:
            raise reject(f"Unsupported time in force '{ticket.tif}'")
        if ticket.order_type in ("LMT", "STP LMT") and ticket.lmt_price is None:
            raise reject("Missing limit price")
        if ticket.order_type in ("STP", "STP LMT") and ticket.aux_price is None:
            raise reject("Missing stop price")
        if (
            ticket.order_type == "TRAIL"
            and ticket.aux_price is None
            and ticket.trailing_percent is None
        ):
            raise reject("Missing trailing amount or trailing percent")
        try:
            check_supported(
                ticket.conditions, lambda con_id: self.universe.get(con_id) is not None,
                self.time_zone,
            )  # fmt: skip
        except ConditionError as exc:
            raise reject(str(exc)) from None
        for name, price in (("limit", ticket.lmt_price), ("stop", ticket.aux_price)):
            if price is None:
                continue
            if price <= 0 and not (ticket.order_type == "TRAIL" and name == "stop"):
                raise reject(f"The {name} price must be positive")
            if ticket.order_type in ("MKT",) and name == "limit":
                continue
            if not spec.on_tick_grid(price):
                raise reject(
                    "The price does not conform to the minimum price variation for this "
                    f"contract ({name} price {price:g}, minimum tick {spec.min_tick:g})"
                )

    def _modify(self, order: SimOrder, ticket: OrderTicket) -> None:
        if order.is_done:
            raise OrderRejected(104, f"Cannot modify a {order.status.lower()} order")
        spec = self.universe.get(order.con_id)
        assert spec is not None
        self.validate(spec, ticket)
        if ticket.total_quantity < order.filled - _EPS:
            raise OrderRejected(
                201, "Order rejected - reason:The quantity is below the filled quantity"
            )
        self._apply_fields(order, ticket)
        if order.staged:
            if ticket.transmit:
                self._transmit(order)
            return
        if order.awaiting_conditions and not order.conditions:
            self._release(order, self.clock.now())
        if order.remaining <= _EPS:
            self._finish(order, FILLED)
            self.listener.order_changed(order, True)
            return
        self.listener.order_changed(order, True)
        self._try_now(order)

    def _transmit(self, order: SimOrder) -> None:
        """Release an order and everything staged with it (a bracket's parent and children)."""
        root = self.get(order.client_id, order.parent_id) if order.parent_id else order
        if root is None:
            root = order
        group = [root] + [o for o in self._children(root) if o is not root]
        released = [o for o in group if o.staged or o is order]
        for o in released:
            o.staged = False
            self._activate(o)
        now = self.clock.now()
        for o in released:
            if o.perm_id in self._conditional:
                self._check_conditions(o, now)
            if o.oca_group and any(p.filled > _EPS for p in self._oca_peers(o, include_done=True)):
                self.cancel_order(o, f"OCA group {o.oca_group} was already filled")
            if not o.is_done and o.status == SUBMITTED:
                self._try_now(o)
                if o.tif == "IOC" and not o.is_done:
                    self.cancel_order(o, "IOC order's unfilled quantity cancelled")

    def _activate(self, order: SimOrder) -> None:
        now = self.clock.now()
        spec = self.universe.get(order.con_id)
        assert spec is not None
        order.placed_at = now
        if order.tif == "DAY":
            order.expires_at = next_session(spec.schedule, now, False).end
        parent = self.get(order.client_id, order.parent_id) if order.parent_id else None
        if parent is not None and parent.status != FILLED:
            order.status = PRE_SUBMITTED
            order.why_held = "child"
        else:
            order.status = PRE_SUBMITTED if order.conditions else SUBMITTED
        if order.conditions:
            # IB shows a conditional order PreSubmitted until its conditions are met.
            order.awaiting_conditions = True
            self._conditional.add(order.perm_id)
        else:
            self._start_working(order, now)
        self.listener.order_changed(order, True)

    def _start_working(self, order: SimOrder, now: float) -> None:
        spec = self.universe.get(order.con_id)
        assert spec is not None
        if order.order_type == "TRAIL":
            order.trail_extreme = self.market.price_ticks(spec, now) * spec.min_tick
        self._working.setdefault(order.con_id, set()).add(order.perm_id)

    def cancel(self, client_id: int, order_id: int) -> None:
        """cancelOrder from a client."""
        order = self.get(client_id, order_id)
        if order is None:
            self.listener.order_error(
                client_id, order_id, 10147,
                f"OrderId {order_id} that needs to be cancelled is not found.",
            )  # fmt: skip
            return
        if order.is_done:
            self.listener.order_error(
                client_id, order_id, 10148,
                f"OrderId {order_id} that needs to be cancelled cannot be cancelled, "
                f"state: {order.status}.",
            )  # fmt: skip
            return
        self.cancel_order(order, "")

    def global_cancel(self) -> None:
        for order in sorted(self.orders.values(), key=lambda o: o.perm_id):
            if not order.is_done:
                self.cancel_order(order, "Global Cancel")

    def cancel_order(self, order: SimOrder, reason: str) -> None:
        if order.is_done:
            return
        was_staged = order.staged
        order.staged = False
        self._finish(order, CANCELLED)
        if not was_staged:
            self.listener.order_changed(order, False)
        self.listener.order_error(
            order.client_id, order.order_id, 202, f"Order Canceled - reason:{reason}"
        )
        # Children never outlive a parent that was cancelled before it filled.
        for child in self._children(order):
            if not child.is_done and order.filled <= _EPS:
                self.cancel_order(child, "Parent order cancelled")

    def expire(self, now: float) -> None:
        """Cancel DAY orders whose session has ended."""
        for perms in [*self._working.values(), self._conditional]:
            for perm in list(perms):
                order = self.orders[perm]
                if order.expires_at is not None and order.expires_at <= now and not order.is_done:
                    self.cancel_order(order, "DAY order expired at the close")

    # --- conditional orders ----------------------------------------------------------------------

    def check_conditions(self, t: float) -> None:
        """The clock reached t (a step's end): submit, or cancel, the orders whose conditions
        are met now."""
        quotes: dict[int, Quote | None] = {}
        for perm in sorted(self._conditional):
            if perm in self._conditional:
                self._check_conditions(self.orders[perm], t, quotes)

    def _check_conditions(
        self, order: SimOrder, t: float, quotes: dict[int, Quote | None] | None = None
    ) -> None:
        if order.why_held == "child":  # conditions count once the parent has filled
            return
        cache: dict[int, Quote | None] = {} if quotes is None else quotes

        def quote_of(con_id: int) -> Quote | None:
            if con_id not in cache:
                spec = self.universe.get(con_id)
                open_ = spec is not None and self.market.is_open(spec, t)
                cache[con_id] = self.market.quote(spec, t) if spec and open_ else None
            return cache[con_id]

        if not all_met(order.conditions, t, quote_of, self.time_zone):
            return
        if order.conditions_cancel_order:
            self.cancel_order(order, "Order conditions were met")
            return
        self._release(order, t)
        self._try_now(order, t)
        if order.tif == "IOC" and not order.is_done:
            self.cancel_order(order, "IOC order's unfilled quantity cancelled")

    def _release(self, order: SimOrder, t: float) -> None:
        """The conditions are met: the order works from now on like any other."""
        self._conditional.discard(order.perm_id)
        order.awaiting_conditions = False
        order.status = SUBMITTED
        self._start_working(order, t)
        self.listener.order_changed(order, True)

    # --- matching --------------------------------------------------------------------------------

    def on_step(self, spec: ContractSpec, k: int) -> None:
        """Step k (5 seconds) has completed: work resting orders against its range, then let
        marketable orders trade at the new quote."""
        perms = self._working.get(spec.con_id)
        if not perms:
            return
        bar = self.market.step(spec, k)
        t_bar = k * STEP
        if bar is not None and self.market.is_open(spec, t_bar):
            for perm in sorted(perms):
                order = self.orders[perm]
                if order.status == SUBMITTED:
                    self._work_bar(order, spec, bar, k)
        now = (k + 1) * STEP
        for perm in sorted(self._working.get(spec.con_id, ())):
            order = self.orders[perm]
            if order.status == SUBMITTED:
                self._try_now(order, now)

    def _try_now(self, order: SimOrder, t: float | None = None) -> None:
        """Trade at the current quote if the order is marketable (or its stop is hit)."""
        spec = self.universe.get(order.con_id)
        assert spec is not None
        t = self.clock.now() if t is None else t
        if order.status != SUBMITTED or not self.market.is_open(spec, t):
            return
        price = quote_price(order, spec, self.market.price_ticks(spec, t))
        if price is not None:
            self._fill_upto(order, spec, int(t // STEP), price, t)

    def _work_bar(self, order: SimOrder, spec: ContractSpec, bar: StepBar, k: int) -> None:
        price = bar_price(order, spec, bar)
        if price is not None:
            self._fill_upto(order, spec, k, price, (k + 1) * STEP)

    def _fill_upto(self, order: SimOrder, spec: ContractSpec, k: int, price: float, t: float):
        qty = min(order.remaining, self.market.available(spec, k))
        lot = spec.size_increment
        qty = math.floor(qty / lot + 1e-9) * lot
        qty = round(qty, 8)
        if qty <= _EPS:
            return
        self.market.consume(spec, k, qty)
        self._fill(order, spec, qty, spec.round_price(price), t)

    def _fill(self, order: SimOrder, spec: ContractSpec, qty: float, price: float, t: float):
        account = self.accounts[order.account]
        commission = commission_for(spec, qty, price)
        signed = qty if order.is_buy else -qty
        result = account.apply_fill(spec, signed, price, commission)
        total_cost = order.avg_fill_price * order.filled + price * qty
        order.filled = round(order.filled + qty, 8)
        order.avg_fill_price = round(total_cost / order.filled, 8)
        order.last_fill_price = price
        execution = Execution(
            exec_id=f"0000e1a7.{self.next_exec_seq:08x}.01.01",
            perm_id=order.perm_id,
            order_id=order.order_id,
            client_id=order.client_id,
            account=order.account,
            con_id=spec.con_id,
            exchange=_venue(spec),
            side="BOT" if order.is_buy else "SLD",
            shares=qty,
            price=price,
            time=t,
            cum_qty=order.filled,
            avg_price=order.avg_fill_price,
            order_ref=order.order_ref,
            commission=commission,
            realized_pnl=result.realized_pnl,
            currency=spec.currency,
        )
        self.next_exec_seq += 1
        self.executions.append(execution)
        if order.remaining <= _EPS:
            self._finish(order, FILLED)
        self.listener.order_filled(order, execution)
        self._after_fill(order, qty)

    def _after_fill(self, order: SimOrder, qty: float) -> None:
        # OCA group: the first fill cancels (type 1) or reduces (types 2, 3) the others.
        if order.oca_group:
            for other in self._oca_peers(order):
                if order.oca_type in (2, 3):
                    self._reduce(other, qty)
                else:
                    self.cancel_order(other, f"OCA group {order.oca_group} filled")
        # Bracket: a filled parent releases its children; a child's fill reduces its siblings.
        if order.status == FILLED:
            for child in self._children(order):
                if child.status == PRE_SUBMITTED and child.awaiting_conditions:
                    child.why_held = ""  # its conditions are watched from now on
                elif child.status == PRE_SUBMITTED:
                    child.status = SUBMITTED
                    child.why_held = ""
                    self.listener.order_changed(child, False)
            for child in self._children(order):
                self._try_now(child)
        if order.parent_id:
            parent = self.get(order.client_id, order.parent_id)
            if parent is not None:
                for sibling in self._children(parent):
                    if sibling is not order and not sibling.is_done and not sibling.oca_group:
                        self._reduce(sibling, qty)

    def _reduce(self, order: SimOrder, qty: float) -> None:
        if order.is_done:
            return
        order.total_quantity = round(order.total_quantity - qty, 8)
        if order.remaining <= _EPS:
            self.cancel_order(order, "OCA reduced to zero")
        else:
            self.listener.order_changed(order, True)

    def _oca_peers(self, order: SimOrder, include_done: bool = False) -> Iterable[SimOrder]:
        return [
            o
            for o in self.orders.values()
            if o is not order
            and o.oca_group == order.oca_group
            and o.account == order.account
            and (include_done or not o.is_done)
        ]

    def _children(self, order: SimOrder) -> list[SimOrder]:
        perms = self._children_of.get((order.client_id, order.order_id), ())
        return [self.orders[p] for p in perms]

    def _index(self, order: SimOrder) -> None:
        self.orders[order.perm_id] = order
        self.by_key[order.key] = order.perm_id
        if order.parent_id:
            self._children_of.setdefault((order.client_id, order.parent_id), []).append(
                order.perm_id
            )

    def _finish(self, order: SimOrder, status: str) -> None:
        order.status = status
        order.completed_at = self.clock.now()
        order.completed_status = status
        perms = self._working.get(order.con_id)
        if perms is not None:
            perms.discard(order.perm_id)
        self._conditional.discard(order.perm_id)

    # --- persistence -----------------------------------------------------------------------------

    def restore_working(self) -> None:
        """Rebuild the per-contract index after orders were loaded from a state file."""
        self._working.clear()
        self._children_of.clear()
        self._conditional.clear()
        for order in list(self.orders.values()):
            if not order.is_done and not order.staged and order.awaiting_conditions:
                self._conditional.add(order.perm_id)
            elif not order.is_done and not order.staged:
                self._working.setdefault(order.con_id, set()).add(order.perm_id)
            self._index(order)


def _venue(spec: ContractSpec) -> str:
    if spec.sec_type == "STK":
        return {"NASDAQ": "ISLAND"}.get(spec.primary_exchange, spec.primary_exchange)
    if spec.sec_type == "OPT":
        return "CBOE"
    return spec.exchange
