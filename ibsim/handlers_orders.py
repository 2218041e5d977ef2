"""Request handlers for orders: place (and what-if), cancel, open and completed orders,
executions."""

from __future__ import annotations

import logging
import time

from . import messages as msg
from . import requests as rq
from .bars import BarRequestError, parse_end_time
from .broker import NO_SECURITY, OrderRejected
from .handler_registry import handles
from .hooks import OrderReceived
from .margin import requirement
from .order_fanout import open_order_messages
from .orders import PRE_SUBMITTED, OrderTicket, SimOrder
from .session import ClientSession
from .state import ServerState

log = logging.getLogger("ibsim")


# --- orders ----------------------------------------------------------------------------------


def _ticket(req: rq.PlaceOrder) -> OrderTicket:
    """The order the client asks for, in the broker's terms."""
    return OrderTicket(
        order_id=req.order_id, contract=req.contract, action=req.action,
        total_quantity=req.total_quantity, order_type=req.order_type, lmt_price=req.lmt_price,
        aux_price=req.aux_price, tif=req.tif, oca_group=req.oca_group, oca_type=req.oca_type,
        account=req.account, order_ref=req.order_ref, transmit=req.transmit,
        parent_id=req.parent_id, outside_rth=req.outside_rth,
        trail_stop_price=req.trail_stop_price, trailing_percent=req.trailing_percent,
        conditions=req.conditions, conditions_ignore_rth=req.conditions_ignore_rth,
        conditions_cancel_order=req.conditions_cancel_order,
    )  # fmt: skip


@handles(rq.PlaceOrder)
def _place_order(state: ServerState, s: ClientSession, req: rq.PlaceOrder) -> None:
    assert s.client_id is not None
    state.hooks.order_received.emit(
        OrderReceived(time.perf_counter(), state.clock.now(), s.client_id, req.order_id, req)
    )
    ticket = _ticket(req)
    if req.what_if:
        state.order_gate.submit(lambda: _what_if(state, s, ticket))
        return
    _log_order(s.client_id, ticket)
    client_id = s.client_id
    state.order_gate.submit(lambda: state.broker.place(client_id, ticket))


def _log_order(client_id: int, ticket: OrderTicket) -> None:
    prices = " ".join(
        f"{name}={value:g}"
        for name, value in (("lmt", ticket.lmt_price), ("aux", ticket.aux_price))
        if value is not None
    )
    log.info(
        "client %d placeOrder %d: %s %g %s %s %s tif=%s ref=%r%s",
        client_id, ticket.order_id, ticket.action, ticket.total_quantity,
        ticket.contract.symbol or ticket.contract.con_id, ticket.order_type, prices, ticket.tif,
        ticket.order_ref, "" if ticket.transmit else " (not transmitted)",
    )  # fmt: skip


def _what_if(state: ServerState, s: ClientSession, ticket: OrderTicket) -> None:
    spec = state.universe.resolve(ticket.contract)
    if spec is None:
        s.send_error(ticket.order_id, 200, NO_SECURITY)
        return
    try:
        state.broker.validate(spec, ticket)
    except OrderRejected as rej:
        s.send_error(ticket.order_id, rej.code, rej.message)
        return
    now = state.clock.now()
    price = state.market.price_ticks(spec, now) * spec.min_tick
    under = state.universe.get(spec.under_con_id) if spec.under_con_id else None
    under_price = state.market.price_ticks(under, now) * under.min_tick if under else None
    signed = ticket.total_quantity if ticket.action == "BUY" else -ticket.total_quantity
    need = requirement(spec, signed, price, under_price)  # the order's own, as if alone
    order = SimOrder(
        perm_id=0, client_id=s.client_id or 0, order_id=ticket.order_id,
        account=ticket.account or state.account_names[0], con_id=spec.con_id,
        route_exchange=ticket.contract.exchange or spec.exchange, action=ticket.action,
        total_quantity=ticket.total_quantity, order_type=ticket.order_type,
        lmt_price=ticket.lmt_price, aux_price=ticket.aux_price, status=PRE_SUBMITTED,
    )  # fmt: skip
    s.write(msg.open_order(order, spec, s.version, (need.initial, need.maintenance, 0.0)))


@handles(rq.CancelOrder)
def _cancel_order(state: ServerState, s: ClientSession, req: rq.CancelOrder) -> None:
    assert s.client_id is not None
    client_id = s.client_id
    state.order_gate.submit(lambda: state.broker.cancel(client_id, req.order_id))


@handles(rq.ReqGlobalCancel)
def _global_cancel(state: ServerState, s: ClientSession, req: rq.ReqGlobalCancel) -> None:
    state.order_gate.submit(state.broker.global_cancel)


@handles(rq.ReqOpenOrders)
def _open_orders(state: ServerState, s: ClientSession, req: rq.ReqOpenOrders) -> None:
    s.write_many(open_order_messages(state, s, state.broker.open_orders(s.client_id)))


@handles(rq.ReqAllOpenOrders)
def _all_open_orders(state: ServerState, s: ClientSession, req: rq.ReqAllOpenOrders) -> None:
    s.write_many(open_order_messages(state, s, state.broker.open_orders()))


@handles(rq.ReqCompletedOrders)
def _completed(state: ServerState, s: ClientSession, req: rq.ReqCompletedOrders) -> None:
    out = []
    today = state.day_start()  # as IB: the current day's only
    for order in state.broker.completed_orders():
        if order.completed_at < today:
            continue
        spec = state.universe.get(order.con_id)
        if spec is not None:
            out.append(msg.completed_order(order, spec, s.version))
    out.append(msg.completed_orders_end())
    s.write_many(out)


@handles(rq.ReqExecutions)
def _executions(state: ServerState, s: ClientSession, req: rq.ReqExecutions) -> None:
    since = state.day_start()  # as IB: the current day's executions only
    if req.time:
        try:
            since = max(since, parse_end_time(req.time, "US/Eastern") or since)
        except BarRequestError:
            pass
    out = []
    for ex in state.broker.executions:
        spec = state.universe.get(ex.con_id)
        if spec is None:
            continue
        if req.client_id and ex.client_id != req.client_id:
            continue
        if req.account and ex.account != req.account:
            continue
        if ex.time < since:
            continue
        if req.symbol and req.symbol.upper() != spec.symbol:
            continue
        if req.sec_type and req.sec_type != spec.sec_type:
            continue
        if req.exchange and req.exchange not in (ex.exchange, spec.exchange):
            continue
        if req.side and {"BUY": "BOT", "SELL": "SLD"}.get(req.side.upper(), req.side) != ex.side:
            continue
        out.append(msg.exec_details(req.req_id, ex, spec, s.version))
        out.append(msg.commission_report(ex))
    out.append(msg.exec_details_end(req.req_id))
    s.write_many(out)
