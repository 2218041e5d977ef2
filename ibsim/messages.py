"""Message encoding: one function per server -> client message, returning its fields.

Every layout follows /work/shared/TWS_WIRE.md, i.e. exactly what ib_async 2.1.0's decoder
unpacks at server versions 157..178. Counts and flags that the decoder reads with a bare
``int()`` are always written; everything else that ibsim does not model is ``""``, which the
decoder maps back to the field's default.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from .bulletins import Bulletin
from .conditions import to_fields
from .contracts import ContractSpec
from .framing import fmt_bool, fmt_float
from .news import Headline
from .option_pricing import Greeks
from .orders import Execution, SimOrder

UNSET_DOUBLE_TEXT = "1.7976931348623157E308"  # how TWS writes an unset double

Fields = list[str]


def _price(spec: ContractSpec, value: float | None) -> str:
    if value is None:
        return ""
    return fmt_float(round(value, spec.price_digits + 1))


def _qty(value: float) -> str:
    return fmt_float(round(value, 8))


def _c11(spec: ContractSpec, exchange: str) -> Fields:
    """conId, symbol, secType, lastTradeDate, strike, right, multiplier, exchange, currency,
    localSymbol, tradingClass."""
    return [
        str(spec.con_id), spec.symbol, spec.sec_type, spec.last_trade_date, _strike(spec),
        spec.right, spec.multiplier, exchange, spec.currency, spec.local_symbol, spec.trading_class,
    ]  # fmt: skip


def _strike(spec: ContractSpec) -> str:
    return fmt_float(spec.strike) if spec.strike else "0"


def ib_time(t: float, tz: str) -> str:
    """``YYYYmmdd HH:MM:SS Area/City`` — parsed by ib_async into an aware datetime."""
    return dt.datetime.fromtimestamp(t, ZoneInfo(tz)).strftime("%Y%m%d %H:%M:%S ") + tz


# --- connection ----------------------------------------------------------------------------


def handshake(server_version: int, t: float) -> Fields:
    stamp = dt.datetime.fromtimestamp(t, ZoneInfo("US/Eastern")).strftime("%Y%m%d %H:%M:%S %Z")
    return [str(server_version), stamp]


def managed_accounts(accounts: list[str]) -> Fields:
    return ["15", "1", ",".join(accounts)]


def next_valid_id(order_id: int) -> Fields:
    return ["9", "1", str(order_id)]


def error(req_id: int, code: int, message: str, version: int) -> Fields:
    fields = ["4", "2", str(req_id), str(code), message]
    if version >= 166:
        fields.append("")  # advancedOrderRejectJson
    return fields


def current_time(t: float) -> Fields:
    return ["49", "1", str(int(t))]


# --- account -------------------------------------------------------------------------------


def update_account_value(key: str, value: str, currency: str, account: str) -> Fields:
    return ["6", "2", key, value, currency, account]


def update_portfolio(
    spec: ContractSpec,
    position: float,
    market_price: float,
    market_value: float,
    avg_cost: float,
    unrealized: float,
    realized: float,
    account: str,
) -> Fields:
    # The contract block here carries primaryExchange in place of exchange.
    c = _c11(spec, spec.primary_exchange)
    return [
        "7", "8", *c, _qty(position), fmt_float(market_price), fmt_float(round(market_value, 2)),
        fmt_float(round(avg_cost, 6)), fmt_float(round(unrealized, 2)),
        fmt_float(round(realized, 2)), account,
    ]  # fmt: skip


def update_account_time(t: float) -> Fields:
    return ["8", "1", dt.datetime.fromtimestamp(t, ZoneInfo("US/Eastern")).strftime("%H:%M")]


def account_download_end(account: str) -> Fields:
    return ["54", "1", account]


def account_update_multi(
    req_id: int, account: str, model_code: str, key: str, value: str, currency: str
) -> Fields:
    return ["73", "1", str(req_id), account, model_code, key, value, currency]


def account_update_multi_end(req_id: int) -> Fields:
    return ["74", "1", str(req_id)]


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> Fields:
    return ["63", "1", str(req_id), account, tag, value, currency]


def account_summary_end(req_id: int) -> Fields:
    return ["64", "1", str(req_id)]


def position(account: str, spec: ContractSpec, quantity: float, avg_cost: float) -> Fields:
    return ["61", "3", account, *_c11(spec, ""), _qty(quantity), fmt_float(round(avg_cost, 6))]


def position_end() -> Fields:
    return ["62", "1"]


def position_multi(
    req_id: int, account: str, spec: ContractSpec, quantity: float, avg_cost: float, model: str
) -> Fields:
    return [
        "71", "1", str(req_id), account, *_c11(spec, ""), _qty(quantity),
        fmt_float(round(avg_cost, 6)), model,
    ]  # fmt: skip


def position_multi_end(req_id: int) -> Fields:
    return ["72", "1", str(req_id)]


def pnl(req_id: int, daily: float, unrealized: float, realized: float) -> Fields:
    return ["94", str(req_id), *(fmt_float(round(v, 2)) for v in (daily, unrealized, realized))]


def pnl_single(
    req_id: int, pos: float, daily: float, unrealized: float, realized: float, value: float
) -> Fields:
    return [
        "95", str(req_id), _qty(pos),
        *(fmt_float(round(v, 2)) for v in (daily, unrealized, realized, value)),
    ]  # fmt: skip


# --- orders --------------------------------------------------------------------------------


def order_status(order: SimOrder) -> Fields:
    return [
        "3", str(order.order_id), order.status, _qty(order.filled), _qty(order.remaining),
        fmt_float(order.avg_fill_price), str(order.perm_id), str(order.parent_id),
        fmt_float(order.last_fill_price), str(order.client_id), order.why_held, "",
    ]  # fmt: skip


def _aux_text(order: SimOrder, spec: ContractSpec) -> str:
    return _price(spec, order.aux_price)


def _conditions(order: SimOrder) -> Fields:
    """numConditions, each condition, then conditionsIgnoreRth and conditionsCancelOrder."""
    if not order.conditions:
        return ["0"]
    f: Fields = [str(len(order.conditions))]
    for cond in order.conditions:
        f += to_fields(cond)
    return [*f, fmt_bool(order.conditions_ignore_rth), fmt_bool(order.conditions_cancel_order)]


def open_order(
    order: SimOrder,
    spec: ContractSpec,
    version: int,
    what_if_margins: tuple[float, float, float] | None = None,
) -> Fields:
    """openOrder (msg 5). ``what_if_margins`` = (init, maint, equityWithLoan) changes for a
    whatIf reply."""
    f: Fields = ["5", str(order.order_id), *_c11(spec, order.route_exchange)]
    f += [
        order.action, _qty(order.total_quantity), order.order_type,
        _price(spec, order.lmt_price), _aux_text(order, spec), order.tif, order.oca_group,
        order.account, "", "0", order.order_ref, str(order.client_id), str(order.perm_id),
        fmt_bool(order.outside_rth), "0", "0", "",
        "",  # sharesAllocation (ignored by the client)
        "", "", "",  # faGroup, faMethod, faPercentage
    ]  # fmt: skip
    if version < 177:
        f.append("")  # faProfile
    f += [
        "", "", "", "", "", "", "", "",  # modelCode .. exemptCode
        "0", "", "", "", "", "",  # auctionStrategy, startingPrice .. stockRangeUpper
        "0", "0", "0", "0", "",  # displaySize, blockOrder, sweepToFill, allOrNone, minQty
        str(order.oca_type), "0", "0", "",  # ocaType, eTradeOnly, firmQuoteOnly, nbboPriceCap
        str(order.parent_id), "0", "", "",  # parentId, triggerMethod, volatility, volatilityType
        "", "",  # deltaNeutralOrderType (empty: no delta-neutral block), deltaNeutralAuxPrice
        "0", "", _price(spec, order.trail_stop_price),
        "" if order.trailing_percent is None else fmt_float(order.trailing_percent),
        "", "", "",  # basisPoints, basisPointsType, comboLegsDescrip
        "0", "0", "0",  # numComboLegs, numOrderComboLegs, numSmartComboRoutingParams
        "", "", "",  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
        "",  # hedgeType
        "0", "", "", "0",  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
        "0",  # deltaNeutralContractPresent
        "",  # algoStrategy
        "0", fmt_bool(what_if_margins is not None), order.status,
    ]  # fmt: skip
    if what_if_margins is not None:
        init, maint, ewl = (fmt_float(round(v, 2)) for v in what_if_margins)
        f += ["0", "0", "0", init, maint, ewl, init, maint, ewl]
    else:
        f += [""] * 9
    f += [
        "", "", "", "", "",  # commission, min/max commission, currency, warningText
        "0", "0",  # randomizeSize, randomizePrice
        *_conditions(order),
        "", "", _price(spec, order.trail_stop_price), "", "", "", "", "0",
        "", "", "",  # softDollarTier name, value, displayName
        "", "0", "0", "0", "0",  # cashQty .. usePriceMgmtAlgo
    ]  # fmt: skip
    if version >= 159:
        f.append("")  # duration (ib_async reads it from 159, not 158)
    if version >= 160:
        f.append("")  # postToAts
    if version >= 162:
        f.append("0")  # autoCancelParent
    if version >= 170:
        f += ["", "", "", "", ""]
    return f


def open_order_end() -> Fields:
    return ["53", "1"]


def completed_order(order: SimOrder, spec: ContractSpec, version: int) -> Fields:
    """completedOrder (msg 101): its own layout, not openOrder's."""
    f: Fields = ["101", *_c11(spec, order.route_exchange)]
    f += [
        order.action, _qty(order.total_quantity), order.order_type,
        _price(spec, order.lmt_price), _aux_text(order, spec), order.tif, order.oca_group,
        order.account, "", "0", order.order_ref, str(order.perm_id),
        fmt_bool(order.outside_rth), "0", "0", "",  # outsideRth, hidden, discretionaryAmt, gat
        "", "", "",  # faGroup, faMethod, faPercentage
    ]  # fmt: skip
    if version < 177:
        f.append("")
    f += [
        "", "", "", "", "", "", "", "",  # modelCode .. exemptCode
        "", "", "", "", "",  # startingPrice .. stockRangeUpper
        "0", "0", "0", "",  # displaySize, sweepToFill, allOrNone, minQty
        str(order.oca_type), "0", "", "",  # ocaType, triggerMethod, volatility, volatilityType
        "", "",  # deltaNeutralOrderType, deltaNeutralAuxPrice
        "0", "", _price(spec, order.trail_stop_price),
        "" if order.trailing_percent is None else fmt_float(order.trailing_percent),
        "",  # comboLegsDescrip
        "0", "0", "0",
        "", "", "",  # scale
        "",  # hedgeType
        "", "", "0", "0",  # clearingAccount, clearingIntent, notHeld, deltaNeutralContractPresent
        "",  # algoStrategy
        "0", order.status, "0", "0",  # solicited, status, randomizeSize, randomizePrice
        *_conditions(order),
        _price(spec, order.trail_stop_price), "", "", "0", "0", "",  # .. autoCancelDate
        _qty(order.filled), "0", "0", "", "0", "0", "0",  # filledQuantity .. parentPermId
        dt.datetime.fromtimestamp(order.completed_at, dt.UTC).strftime(
            "%Y%m%d %H:%M:%S UTC"
        ),
        order.completed_status,
    ]  # fmt: skip
    if version >= 170:
        f += ["", "", "", "", ""]
    return f


def completed_orders_end() -> Fields:
    return ["102"]


def exec_details(req_id: int, ex: Execution, spec: ContractSpec, version: int) -> Fields:
    f = [
        "11", str(req_id), str(ex.order_id), *_c11(spec, spec.exchange), ex.exec_id,
        ib_time(ex.time, spec.time_zone), ex.account, ex.exchange, ex.side, _qty(ex.shares),
        _price(spec, ex.price), str(ex.perm_id), str(ex.client_id), "0", _qty(ex.cum_qty),
        fmt_float(round(ex.avg_price, 8)), ex.order_ref, "", "", "", "2",
    ]  # fmt: skip
    if version >= 178:
        f.append("0")  # pendingPriceRevision
    return f


def exec_details_end(req_id: int) -> Fields:
    return ["55", "1", str(req_id)]


def commission_report(ex: Execution) -> Fields:
    realized = (
        UNSET_DOUBLE_TEXT if ex.realized_pnl is None else fmt_float(round(ex.realized_pnl, 4))
    )
    return ["59", "1", ex.exec_id, fmt_float(ex.commission), ex.currency, realized,
            UNSET_DOUBLE_TEXT, "0"]  # fmt: skip


# --- contracts -----------------------------------------------------------------------------


def contract_data(
    req_id: int,
    spec: ContractSpec,
    exchange: str,
    version: int,
    trading_hours: str,
    liquid_hours: str,
) -> Fields:
    close = "16:00" if spec.sec_type == "OPT" else "08:30"
    last_times = f"{spec.last_trade_date} {close} {spec.time_zone}" if spec.last_trade_date else ""
    market_name = {"STK": spec.trading_class, "CASH": spec.local_symbol}.get(
        spec.sec_type, spec.trading_class
    )
    f = ["10"]
    if version < 164:
        f.append("8")
    f += [
        str(req_id), spec.symbol, spec.sec_type, last_times, _strike(spec), spec.right, exchange,
        spec.currency,
        spec.local_symbol, market_name, spec.trading_class, str(spec.con_id),
        fmt_float(spec.min_tick),
    ]  # fmt: skip
    if version < 164:
        f.append("1")  # mdSizeMultiplier
    rules = ",".join([str(spec.market_rule_id)] * len(spec.valid_exchanges.split(",")))
    f += [
        spec.multiplier, spec.order_types, spec.valid_exchanges, "1", str(spec.under_con_id),
        spec.long_name, spec.primary_exchange, spec.contract_month, spec.industry,
        spec.category, spec.subcategory, spec.time_zone, trading_hours, liquid_hours,
        "", "",  # evRule, evMultiplier
        "0",  # numSecIds
        "1", spec.under_symbol, spec.under_sec_type, rules, spec.last_trade_date,
        spec.stock_type,
    ]  # fmt: skip
    if version == 163:
        f.append(fmt_float(spec.size_increment))
    if version >= 164:
        f += [fmt_float(spec.min_size), fmt_float(spec.size_increment),
              fmt_float(spec.size_increment)]  # fmt: skip
    return f


def contract_data_end(req_id: int) -> Fields:
    return ["52", "1", str(req_id)]


def symbol_samples(req_id: int, specs: list[ContractSpec], version: int) -> Fields:
    f = ["79", str(req_id), str(len(specs))]
    for s in specs:
        f += [str(s.con_id), s.symbol, s.sec_type, s.primary_exchange or s.exchange, s.currency]
        f += ["0"]  # no derivative sec types
        if version >= 176:
            f += [s.long_name, ""]
    return f


def market_rule(rule_id: int, increments: list[tuple[float, float]]) -> Fields:
    f = ["93", str(rule_id), str(len(increments))]
    for low_edge, inc in increments:
        f += [fmt_float(low_edge), fmt_float(inc)]
    return f


# --- bars and ticks ------------------------------------------------------------------------

BarRow = tuple[str, str, str, str, str, str, str, str]  # date, o, h, l, c, volume, wap, count


def historical_data(req_id: int, start: str, end: str, rows: list[BarRow]) -> Fields:
    f = ["17", str(req_id), start, end, str(len(rows))]
    for row in rows:
        f.extend(row)
    return f


def historical_data_update(req_id: int, row: BarRow) -> Fields:
    date, o, h, low, c, volume, wap, count = row
    # Note the order: barCount first, and close before high/low.
    return ["90", str(req_id), count, date, o, c, h, low, wap, volume]


def realtime_bar(req_id: int, t: int, row: BarRow) -> Fields:
    _, o, h, low, c, volume, wap, count = row
    return ["50", "3", str(req_id), str(t), o, h, low, c, volume, wap, count]


def head_timestamp(req_id: int, stamp: str) -> Fields:
    return ["88", str(req_id), stamp]


def tick_price(req_id: int, tick_type: int, price: str, size: str, mask: int = 0) -> Fields:
    return ["1", "6", str(req_id), str(tick_type), price, size, str(mask)]


def tick_size(req_id: int, tick_type: int, size: str) -> Fields:
    return ["2", "6", str(req_id), str(tick_type), size]


def tick_string(req_id: int, tick_type: int, value: str) -> Fields:
    return ["46", "6", str(req_id), str(tick_type), value]


def market_data_type(req_id: int, data_type: int) -> Fields:
    return ["58", "1", str(req_id), str(data_type)]


def tick_snapshot_end(req_id: int) -> Fields:
    return ["57", "1", str(req_id)]


def news_bulletin(b: Bulletin) -> Fields:
    """14 updateNewsBulletin: version, msgId, msgType, message, origExchange."""
    return ["14", "1", str(b.msg_id), str(b.msg_type), b.message, b.exchange]


def news_providers(providers: list[tuple[str, str]]) -> Fields:
    """85 newsProviders: count, then code and name of each."""
    return ["85", str(len(providers)), *(x for pair in providers for x in pair)]


def historical_news(req_id: int, h: Headline) -> Fields:
    """86 historicalNews: reqId, time (``yyyy-MM-dd HH:mm:ss.0``, UTC), provider, articleId,
    headline."""
    stamp = dt.datetime.fromtimestamp(h.time, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.0")
    return ["86", str(req_id), stamp, h.provider, h.article_id, h.text]


def historical_news_end(req_id: int, has_more: bool) -> Fields:
    return ["87", str(req_id), fmt_bool(has_more)]


def news_article(req_id: int, text: str) -> Fields:
    """83 newsArticle: reqId, articleType (0 plain text, 1 binary/PDF), text."""
    return ["83", str(req_id), "0", text]


def scanner_parameters(xml: str) -> Fields:
    return ["19", "1", xml]


def scanner_data(req_id: int, specs: list[ContractSpec]) -> Fields:
    """20 scannerData (version 3): count, then per row rank, conId, symbol, secType,
    lastTradeDate, strike, right, exchange, currency, localSymbol, marketName, tradingClass,
    distance, benchmark, projection, legs."""
    out = ["20", "3", str(req_id), str(len(specs))]
    for rank, spec in enumerate(specs):
        out += [
            str(rank), str(spec.con_id), spec.symbol, spec.sec_type, spec.last_trade_date, "0",
            "", "SMART", spec.currency, spec.local_symbol, spec.trading_class,
            spec.trading_class, "", "", "", "",
        ]  # fmt: skip
    return out


def tick_option_computation(req_id: int, tick_type: int, g: Greeks) -> Fields:
    """21 tickOptionComputation (no version field at 157+): reqId, tickType, tickAttrib
    (0: return-based), impliedVol, delta, optPrice, pvDividend, gamma, vega, theta, undPrice."""
    return [
        "21", str(req_id), str(tick_type), "0", fmt_float(round(g.implied_vol, 6)),
        fmt_float(round(g.delta, 6)), fmt_float(round(g.opt_price, 4)), "0.0",
        fmt_float(round(g.gamma, 6)), fmt_float(round(g.vega, 6)), fmt_float(round(g.theta, 6)),
        fmt_float(round(g.und_price, 4)),
    ]  # fmt: skip


def sec_def_opt_params(
    req_id: int, under: ContractSpec, expirations: list[str], strikes: list[float]
) -> Fields:
    """75 securityDefinitionOptionParameter: reqId, exchange, underlyingConId, tradingClass,
    multiplier, nExpirations, expirations..., nStrikes, strikes..."""
    return [
        "75", str(req_id), "SMART", str(under.con_id), under.symbol, "100",
        str(len(expirations)), *expirations, str(len(strikes)), *(fmt_float(k) for k in strikes),
    ]  # fmt: skip


def sec_def_opt_params_end(req_id: int) -> Fields:
    return ["76", str(req_id)]
