"""Request handlers for contracts and market data: contract details, matching symbols, market
rules, market data, real-time bars, historical data and schedules, head timestamps."""

from __future__ import annotations

import math

from . import messages as msg
from . import requests as rq
from .bars import BarRequestError, parse_bar_size, parse_duration, parse_end_time
from .broker import NO_SECURITY
from .contracts import ContractRef
from .handler_registry import HMDS, handles
from .market import WHAT_TO_SHOW
from .pricepath import STEP
from .session import ClientSession, KeepUpSub, MktDataSub, RealTimeSub
from .sessions import hours_string, sessions_before
from .state import ServerState
from .streaming import bar_key, bar_row, quote_ticks

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


@handles(rq.ReqHistoricalData)
def _historical(state: ServerState, s: ClientSession, req: rq.ReqHistoricalData) -> None:
    if state.faults.pacing_next:
        state.faults.pacing_next = False
        s.send_error(req.req_id, 162, HMDS + "Pacing violation")
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
        s.send_error(req.req_id, 162, HMDS + str(exc))
        return
    if not bars:
        s.send_error(req.req_id, 162, HMDS + "HMDS query returned no data")
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
