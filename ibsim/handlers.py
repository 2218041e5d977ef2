"""Request handlers: one small function per request type, answering on the client's session.

Handlers read and change the server state and write messages; the order book, market and
accounts do the work, the fan-out modules build the account and order messages.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from . import messages as msg
from . import requests as rq
from .account_fanout import (
    account_summary_messages,
    account_value_messages,
    account_value_rows,
    pnl_message,
    pnl_single_message,
    portfolio_messages,
    position_rows,
)
from .bars import BarRequestError, parse_bar_size, parse_duration, parse_end_time
from .broker import NO_SECURITY, OrderRejected
from .contracts import ContractRef
from .hooks import OrderReceived
from .market import WHAT_TO_SHOW
from .news import NoSuchArticle
from .order_fanout import open_order_messages
from .orders import PRE_SUBMITTED, OrderTicket, SimOrder
from .pricepath import STEP
from .scanner import ScanError, parameters_xml, rank
from .session import ClientSession, KeepUpSub, MktDataSub, RealTimeSub
from .sessions import hours_string, sessions_before
from .state import ServerState
from .streaming import bar_key, bar_row, quote_ticks

log = logging.getLogger("ibsim")

Handler = Callable[[ServerState, ClientSession, Any], None]
HANDLERS: dict[type, Handler] = {}


def handles(req_type: type) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[req_type] = fn
        return fn

    return register


# --- connection-level ----------------------------------------------------------------------

_FARMS_OK = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)


def greeting(state: ServerState, s: ClientSession) -> list[list[str]]:
    """What a client is told once its startApi is accepted."""
    assert s.client_id is not None
    out = [
        msg.managed_accounts(state.account_names),
        msg.next_valid_id(state.broker.next_order_id(s.client_id)),
    ]
    out += [msg.error(-1, code, text, s.version) for code, text in _FARMS_OK]
    if state.faults.connectivity_lost:
        # As TWS does: a client connecting while the servers are away is told so.
        out.append(msg.error(
            -1, 2110,
            "Connectivity between Trader Workstation and server is broken. "
            "It will be restored automatically.",
            s.version,
        ))  # fmt: skip
    return out


@handles(rq.ReqCurrentTime)
def _current_time(state: ServerState, s: ClientSession, req: rq.ReqCurrentTime) -> None:
    s.write(msg.current_time(state.clock.now()))


@handles(rq.ReqManagedAccts)
def _managed(state: ServerState, s: ClientSession, req: rq.ReqManagedAccts) -> None:
    s.write(msg.managed_accounts(state.account_names))


@handles(rq.ReqIds)
def _ids(state: ServerState, s: ClientSession, req: rq.ReqIds) -> None:
    assert s.client_id is not None
    s.write(msg.next_valid_id(state.broker.next_order_id(s.client_id)))


@handles(rq.ReqMarketDataType)
def _md_type(state: ServerState, s: ClientSession, req: rq.ReqMarketDataType) -> None:
    s.market_data_type = req.market_data_type if req.market_data_type in (1, 2, 3, 4) else 1


@handles(rq.ReqAutoOpenOrders)
def _auto_open(state: ServerState, s: ClientSession, req: rq.ReqAutoOpenOrders) -> None:
    """Binding of manual TWS orders: ibsim has none, so there is nothing to bind."""


@handles(rq.Unsupported)
def _unsupported(state: ServerState, s: ClientSession, req: rq.Unsupported) -> None:
    s.send_error(
        req.req_id,
        505,
        f"Unsupported request {req.name} (message id {req.msg_id}): ibsim does not implement it",
    )


@handles(rq.ReqNewsBulletins)
def _news_bulletins(state: ServerState, s: ClientSession, req: rq.ReqNewsBulletins) -> None:
    s.subs.bulletins = True
    if req.all_msgs:
        s.write_many([msg.news_bulletin(b) for b in state.bulletins.since(state.day_start())])


@handles(rq.CancelNewsBulletins)
def _cancel_news_bulletins(
    state: ServerState, s: ClientSession, req: rq.CancelNewsBulletins
) -> None:
    s.subs.bulletins = False


# --- news ----------------------------------------------------------------------------------

_NEWS_NOT_ALLOWED = 10276  # IB: "News feed is not allowed"
_MAX_HEADLINES = 300  # IB's cap on totalResults


def _news_refused(s: ClientSession, req_id: int, missing: list[str]) -> None:
    s.send_error(req_id, _NEWS_NOT_ALLOWED,
                 f"News feed is not allowed: no subscription to {'+'.join(missing)}")  # fmt: skip


@handles(rq.ReqNewsProviders)
def _news_providers(state: ServerState, s: ClientSession, req: rq.ReqNewsProviders) -> None:
    s.write(msg.news_providers(state.news.providers()))


@handles(rq.ReqHistoricalNews)
def _historical_news(state: ServerState, s: ClientSession, req: rq.ReqHistoricalNews) -> None:
    spec = state.universe.get(req.con_id)
    if spec is None:
        s.send_error(req.req_id, 200, "No security definition has been found for the request")
        return
    codes = [c for c in req.provider_codes.upper().split("+") if c]
    missing = state.news.missing(codes)
    if missing:
        _news_refused(s, req.req_id, missing)
        return
    now = state.clock.now()
    try:
        start = parse_end_time(req.start, state.time_zone)
        end = parse_end_time(req.end, state.time_zone)
    except BarRequestError as exc:
        s.send_error(req.req_id, 321, f"Error validating request: {exc}")
        return
    limit = min(max(req.total_results, 1), _MAX_HEADLINES)
    found, more = state.news.headlines(spec.symbol, codes, start, min(end or now, now), limit)
    s.write_many([msg.historical_news(req.req_id, h) for h in found])
    s.write(msg.historical_news_end(req.req_id, more))


@handles(rq.ReqNewsArticle)
def _news_article(state: ServerState, s: ClientSession, req: rq.ReqNewsArticle) -> None:
    missing = state.news.missing([req.provider_code.upper()])
    if missing:
        _news_refused(s, req.req_id, missing)
        return
    try:
        text = state.news.article(req.article_id, state.clock.now())
    except NoSuchArticle:
        s.send_error(req.req_id, 10172, f"Failed to request news article: {req.article_id}")
        return
    s.write(msg.news_article(req.req_id, text))


# --- market scanner --------------------------------------------------------------------------


@handles(rq.ReqScannerParameters)
def _scanner_parameters(state: ServerState, s: ClientSession, req: rq.ReqScannerParameters) -> None:
    s.write(msg.scanner_parameters(parameters_xml()))


@handles(rq.ReqScannerSubscription)
def _scanner(state: ServerState, s: ClientSession, req: rq.ReqScannerSubscription) -> None:
    """One answer, ranked now (IB refreshes a subscription every 30 s or so; ibsim does not)."""
    try:
        specs = rank(
            state.market, state.universe, req.scan_code, req.instrument, req.location, req.rows,
            state.clock.now(), req.above_price, req.below_price,
        )  # fmt: skip
    except ScanError as exc:
        s.send_error(req.req_id, 162, f"{_HMDS}{exc}")
        return
    s.write(msg.scanner_data(req.req_id, specs))


@handles(rq.CancelScannerSubscription)
def _cancel_scanner(
    state: ServerState, s: ClientSession, req: rq.CancelScannerSubscription
) -> None:
    """Nothing to stop: ibsim answers a subscription once."""


# --- contracts -----------------------------------------------------------------------------


@handles(rq.ReqContractDetails)
def _contract_details(state: ServerState, s: ClientSession, req: rq.ReqContractDetails) -> None:
    now = state.clock.now()
    # An expired future is no longer listed (IB forgets it the day after its last trade).
    found = [spec for spec in state.universe.match(req.contract) if not spec.expired(now)]
    if not found:
        s.send_error(req.req_id, 200, NO_SECURITY)
        return
    out = []
    for spec in found:
        exchanges = spec.valid_exchanges.split(",")
        exchange = req.contract.exchange if req.contract.exchange in exchanges else spec.exchange
        hours = hours_string(spec.schedule, now, False), hours_string(spec.schedule, now, True)
        out.append(msg.contract_data(req.req_id, spec, exchange, s.version, *hours))
    out.append(msg.contract_data_end(req.req_id))
    s.write_many(out)


@handles(rq.ReqMatchingSymbols)
def _matching(state: ServerState, s: ClientSession, req: rq.ReqMatchingSymbols) -> None:
    pattern = req.pattern.upper()
    specs = [
        spec
        for spec in state.universe
        if spec.symbol.startswith(pattern) or pattern in spec.long_name.upper()
    ]
    s.write(msg.symbol_samples(req.req_id, specs[:16], s.version))


@handles(rq.ReqMarketRule)
def _market_rule(state: ServerState, s: ClientSession, req: rq.ReqMarketRule) -> None:
    ticks = sorted(
        {spec.min_tick for spec in state.universe if spec.market_rule_id == req.market_rule_id}
    )
    s.write(msg.market_rule(req.market_rule_id, [(0.0, ticks[0] if ticks else 0.01)]))


# --- account ---------------------------------------------------------------------------------


@handles(rq.ReqAccountUpdates)
def _account_updates(state: ServerState, s: ClientSession, req: rq.ReqAccountUpdates) -> None:
    if not req.subscribe:
        s.subs.account_updates = None
        return
    account = req.account or state.account_names[0]
    if account not in state.accounts:
        s.send_error(-1, 321, f"Error validating request: account {account} is not managed")
        return
    s.subs.account_updates = account
    out = account_value_messages(state, account)
    out += portfolio_messages(state, account)
    out.append(msg.update_account_time(state.clock.now()))
    out.append(msg.account_download_end(account))
    s.write_many(out)


@handles(rq.ReqAccountUpdatesMulti)
def _account_multi(state: ServerState, s: ClientSession, req: rq.ReqAccountUpdatesMulti) -> None:
    accounts = state.account_names if req.account in ("", "All") else [req.account]
    out = []
    for account in accounts:
        if account not in state.accounts:
            s.send_error(req.req_id, 321, f"Error validating request: unknown account {account}")
            return
        out += [
            msg.account_update_multi(req.req_id, account, req.model_code, key, value, cur)
            for key, value, cur in account_value_rows(state, account)
        ]
    out.append(msg.account_update_multi_end(req.req_id))
    s.subs.account_multi[req.req_id] = req.account
    s.write_many(out)


@handles(rq.CancelAccountUpdatesMulti)
def _cancel_account_multi(
    state: ServerState, s: ClientSession, req: rq.CancelAccountUpdatesMulti
) -> None:
    s.subs.account_multi.pop(req.req_id, None)


@handles(rq.ReqAccountSummary)
def _account_summary(state: ServerState, s: ClientSession, req: rq.ReqAccountSummary) -> None:
    s.subs.account_summary[req.req_id] = req.tags
    out = account_summary_messages(state, req.req_id, req.tags)
    out.append(msg.account_summary_end(req.req_id))
    s.write_many(out)


@handles(rq.CancelAccountSummary)
def _cancel_account_summary(
    state: ServerState, s: ClientSession, req: rq.CancelAccountSummary
) -> None:
    s.subs.account_summary.pop(req.req_id, None)


@handles(rq.ReqPositions)
def _positions(state: ServerState, s: ClientSession, req: rq.ReqPositions) -> None:
    s.subs.positions = True
    out = [
        msg.position(account, spec, pos.quantity, pos.avg_cost)
        for account, spec, pos in position_rows(state)
    ]
    out.append(msg.position_end())
    s.write_many(out)


@handles(rq.CancelPositions)
def _cancel_positions(state: ServerState, s: ClientSession, req: rq.CancelPositions) -> None:
    s.subs.positions = False


@handles(rq.ReqPositionsMulti)
def _positions_multi(state: ServerState, s: ClientSession, req: rq.ReqPositionsMulti) -> None:
    out = [
        msg.position_multi(req.req_id, account, spec, pos.quantity, pos.avg_cost, req.model_code)
        for account, spec, pos in position_rows(state)
        if req.account in ("", "All", account)
    ]
    out.append(msg.position_multi_end(req.req_id))
    s.write_many(out)


@handles(rq.CancelPositionsMulti)
def _cancel_positions_multi(
    state: ServerState, s: ClientSession, req: rq.CancelPositionsMulti
) -> None:
    """Position-multi replies are one-shot here."""


@handles(rq.ReqPnL)
def _pnl(state: ServerState, s: ClientSession, req: rq.ReqPnL) -> None:
    s.subs.pnl[req.req_id] = req.account
    s.write(pnl_message(state, req.req_id, req.account))


@handles(rq.CancelPnL)
def _cancel_pnl(state: ServerState, s: ClientSession, req: rq.CancelPnL) -> None:
    s.subs.pnl.pop(req.req_id, None)


@handles(rq.ReqPnLSingle)
def _pnl_single(state: ServerState, s: ClientSession, req: rq.ReqPnLSingle) -> None:
    s.subs.pnl_single[req.req_id] = (req.account, req.con_id)
    s.write(pnl_single_message(state, req.req_id, req.account, req.con_id))


@handles(rq.CancelPnLSingle)
def _cancel_pnl_single(state: ServerState, s: ClientSession, req: rq.CancelPnLSingle) -> None:
    s.subs.pnl_single.pop(req.req_id, None)


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
    price = state.market.price_ticks(spec, state.clock.now()) * spec.min_tick
    notional = ticket.total_quantity * price * spec.multiplier_value
    rate = {"FUT": 0.06, "CRYPTO": 1.0}.get(spec.sec_type, 0.25)
    order = SimOrder(
        perm_id=0, client_id=s.client_id or 0, order_id=ticket.order_id,
        account=ticket.account or state.account_names[0], con_id=spec.con_id,
        route_exchange=ticket.contract.exchange or spec.exchange, action=ticket.action,
        total_quantity=ticket.total_quantity, order_type=ticket.order_type,
        lmt_price=ticket.lmt_price, aux_price=ticket.aux_price, status=PRE_SUBMITTED,
    )  # fmt: skip
    margin = notional * rate
    s.write(msg.open_order(order, spec, s.version, (margin, margin * 0.9, 0.0)))


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


# --- market data -----------------------------------------------------------------------------


def _resolve(state: ServerState, s: ClientSession, req_id: int, ref: ContractRef):
    spec = state.universe.resolve(ref)
    if spec is None:
        s.send_error(req_id, 200, NO_SECURITY)
    return spec


@handles(rq.ReqMktData)
def _mkt_data(state: ServerState, s: ClientSession, req: rq.ReqMktData) -> None:
    spec = _resolve(state, s, req.req_id, req.contract)
    if spec is None:
        return
    now = state.clock.now()
    if spec.sec_type == "OPT" and spec.expired(now):
        s.send_error(req.req_id, 200, NO_SECURITY)  # as IB: an expired option is not listed
        return
    out = [msg.market_data_type(req.req_id, s.market_data_type)]
    if not state.faults.data_blocked(spec.con_id):
        out += quote_ticks(req.req_id, spec, state.market.quote(spec, now), s.market_data_type)
    if req.snapshot or req.regulatory_snapshot:
        out.append(msg.tick_snapshot_end(req.req_id))
    else:
        s.subs.mkt_data[req.req_id] = MktDataSub(spec, s.market_data_type, int(now // STEP) - 1)
        state.clients.subscriptions_changed()
    s.write_many(out)


@handles(rq.CancelMktData)
def _cancel_mkt_data(state: ServerState, s: ClientSession, req: rq.CancelMktData) -> None:
    s.subs.mkt_data.pop(req.req_id, None)
    state.clients.subscriptions_changed()


@handles(rq.ReqRealTimeBars)
def _real_time_bars(state: ServerState, s: ClientSession, req: rq.ReqRealTimeBars) -> None:
    spec = _resolve(state, s, req.req_id, req.contract)
    if spec is None:
        return
    what = req.what_to_show.upper()
    if req.bar_size != 5:
        s.send_error(req.req_id, 420, "Invalid Real-time Query: only 5 second bars are supported")
        return
    if what not in WHAT_TO_SHOW or (what == "TRADES" and spec.sec_type == "CASH"):
        s.send_error(
            req.req_id, 420, f"Invalid Real-time Query: no {what} data for {spec.sec_type}"
        )
        return
    last_k = int(state.clock.now() // STEP) - 1
    s.subs.realtime[req.req_id] = RealTimeSub(spec, what, req.use_rth, last_k)
    state.clients.subscriptions_changed()


@handles(rq.CancelRealTimeBars)
def _cancel_rt(state: ServerState, s: ClientSession, req: rq.CancelRealTimeBars) -> None:
    s.subs.realtime.pop(req.req_id, None)
    state.clients.subscriptions_changed()


_HMDS = "Historical Market Data Service error message:"


@handles(rq.ReqHistoricalData)
def _historical(state: ServerState, s: ClientSession, req: rq.ReqHistoricalData) -> None:
    if state.faults.pacing_next:
        state.faults.pacing_next = False
        s.send_error(req.req_id, 162, _HMDS + "Pacing violation")
        return
    spec = _resolve(state, s, req.req_id, req.contract)
    if spec is None:
        return
    what = req.what_to_show.upper()
    now = state.clock.now()
    try:
        if what == "SCHEDULE":
            _schedule(state, s, req, spec, now)
            return
        if what not in WHAT_TO_SHOW:
            raise BarRequestError(f"Invalid what to show '{req.what_to_show}'")
        if what == "TRADES" and spec.sec_type == "CASH":
            raise BarRequestError(f"No historical market data for {spec.local_symbol} TRADES")
        if req.keep_up_to_date and req.end_date_time.strip():
            raise BarRequestError("End date not supported with live updates")
        size = parse_bar_size(req.bar_size)
        duration = parse_duration(req.duration)
        end = parse_end_time(req.end_date_time, spec.time_zone)
        end = now if end is None else min(end, now)
        end_k = int(end // STEP)
        bars = state.market.history(
            spec, end_k * STEP, duration, size, req.use_rth, req.keep_up_to_date
        )
    except BarRequestError as exc:
        s.send_error(req.req_id, 162, _HMDS + str(exc))
        return
    if not bars:
        s.send_error(req.req_id, 162, _HMDS + "HMDS query returned no data")
        return
    rows = [bar_row(state.market, spec, b, what, req.format_date, size.intraday) for b in bars]
    start_text, end_text = _range_text(spec, bars[0].start, end_k * STEP, req.format_date)
    s.write(msg.historical_data(req.req_id, start_text, end_text, rows))
    if req.keep_up_to_date:
        last = bars[-1]
        partial = last.end > end_k * STEP
        key = bar_key(state.market, spec, size, last, req.use_rth) if partial else None
        s.subs.keep_up[req.req_id] = KeepUpSub(
            spec, size, what, req.use_rth, req.format_date, end_k - 1,
            last if partial else None, key,
        )  # fmt: skip
        state.clients.subscriptions_changed()


def _range_text(spec, start: float, end: float, format_date: int) -> tuple[str, str]:
    if format_date == 2:
        return str(int(start)), str(int(end))
    return msg.ib_time(start, spec.time_zone), msg.ib_time(end, spec.time_zone)


def _schedule(state: ServerState, s: ClientSession, req: rq.ReqHistoricalData, spec, now) -> None:
    duration = parse_duration(req.duration)
    end = parse_end_time(req.end_date_time, spec.time_zone) or now
    sessions = sessions_before(spec.schedule, end, max(1, duration.count), req.use_rth)

    def local(t: float) -> str:
        return msg.ib_time(t, spec.time_zone).rsplit(" ", 1)[0].replace(" ", "-")

    f = ["106", str(req.req_id), local(sessions[0].start), local(sessions[-1].end)]
    f += [spec.time_zone, str(len(sessions))]
    for sess in sessions:
        f += [local(sess.start), local(sess.end), f"{sess.trade_date:%Y%m%d}"]
    s.write(f)


@handles(rq.CancelHistoricalData)
def _cancel_hist(state: ServerState, s: ClientSession, req: rq.CancelHistoricalData) -> None:
    s.subs.keep_up.pop(req.req_id, None)
    state.clients.subscriptions_changed()


@handles(rq.ReqHeadTimestamp)
def _head(state: ServerState, s: ClientSession, req: rq.ReqHeadTimestamp) -> None:
    spec = _resolve(state, s, req.req_id, req.contract)
    if spec is None:
        return
    t = math.ceil(state.market.head_timestamp(spec))
    stamp = str(t) if req.format_date == 2 else msg.ib_time(t, spec.time_zone)
    s.write(msg.head_timestamp(req.req_id, stamp))


@handles(rq.CancelHeadTimestamp)
def _cancel_head(state: ServerState, s: ClientSession, req: rq.CancelHeadTimestamp) -> None:
    """Head timestamps are answered at once; nothing to cancel."""
