"""Translation between ib_async's objects and the engine's domain types, both ways, and IB's
order-status rules. Pure: no connection, no state; contracts are named by the caller
(engine/ib_contracts.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime

from ib_async import Contract, HistoricalNews, NewsBulletin, OptionComputation, Ticker, Trade
from ib_async import Fill as IBFill
from ib_async import OptionChain as IBOptionChain
from ib_async import Order as IBOrder
from ib_async import Position as IBPosition
from ib_async.objects import AccountValue, BarData, CommissionReport, PortfolioItem, RealTimeBar
from ib_async.util import UNSET_DOUBLE

from engine.domain import (
    AccountSummary,
    Bar,
    Bulletin,
    BulletinKind,
    Fill,
    Greeks,
    Headline,
    OptionChain,
    OptionQuote,
    Order,
    OrderStatus,
    OrderUpdate,
    Position,
    ScanRow,
    Side,
)
from engine.ports import ACCOUNT_CURRENCIES, BrokerOrder

_STATUS = {
    "PendingSubmit": OrderStatus.PENDING,
    "ApiPending": OrderStatus.PENDING,
    "PreSubmitted": OrderStatus.SUBMITTED,
    "Submitted": OrderStatus.SUBMITTED,
    "PendingCancel": OrderStatus.SUBMITTED,
    "ValidationError": OrderStatus.SUBMITTED,  # live, with a warning on it
    "ApiUpdate": OrderStatus.SUBMITTED,
    "Filled": OrderStatus.FILLED,
    "Cancelled": OrderStatus.CANCELLED,
    "ApiCancelled": OrderStatus.CANCELLED,
    # IB: "held or rejected"; not final until reconciliation says what it is.
    "Inactive": OrderStatus.UNKNOWN,
}

# ib_async marks an order Cancelled on any error carrying its id; after these the order may
# well be alive or filled, so its state is unknown until a re-sync.
_NOT_REALLY_CANCELLED = frozenset({161, 10147, 10148, 10349})


def price(value: float | None) -> float | None:
    """A price, or None for IB's marks of "no price" (unset, infinite, NaN)."""
    if value is None or not math.isfinite(value) or value == UNSET_DOUBLE or value >= 1e300:
        return None
    return value


def order_status(trade: Trade) -> OrderStatus:
    status = _STATUS.get(trade.orderStatus.status, OrderStatus.UNKNOWN)
    error = trade.log[-1].errorCode if trade.log else 0
    if status is OrderStatus.CANCELLED and error == 201:
        return OrderStatus.REJECTED
    if status is OrderStatus.CANCELLED and error in _NOT_REALLY_CANCELLED:
        return OrderStatus.UNKNOWN
    if status is OrderStatus.SUBMITTED and trade.orderStatus.filled > 0:
        return OrderStatus.PARTIAL
    return status


# --- to ib_async ------------------------------------------------------------------------


def ib_order(
    order: Order, account: str, *, parent_id: int, transmit: bool, oca_group: str,
    outside_rth: bool,
) -> IBOrder:
    return IBOrder(
        action=order.side.value,
        totalQuantity=order.quantity,
        orderType=order.order_type.value,
        lmtPrice=order.limit_price if order.limit_price is not None else UNSET_DOUBLE,
        auxPrice=order.stop_price if order.stop_price is not None else UNSET_DOUBLE,
        orderRef=order.order_ref,
        account=account,
        tif="GTC" if parent_id else "DAY",
        transmit=transmit,
        parentId=parent_id,
        ocaGroup=oca_group,
        ocaType=1 if oca_group else 0,
        outsideRth=outside_rth,
    )


def history_duration(bars_needed: int, bar_seconds: int) -> str:
    """An IB duration string covering `bars_needed` bars, with room for nights and weekends."""
    if bar_seconds < 60:
        # IB's longest durations for sub-minute bars.
        longest = {5: 7200, 10: 14400, 15: 14400, 30: 28800}.get(bar_seconds, 7200)
        return f"{min(max(bars_needed * bar_seconds * 4, 1800), longest)} S"
    regular_session = 6.5 * 3600
    days = math.ceil(bars_needed * bar_seconds / regular_session) + 3
    return f"{days} D"


def what_to_show(contract: Contract) -> str:
    """Bars of trades, except where trades are not what moves the price: currencies have none
    at IB, and an option trades too seldom for steady bars (IB serves OPT both TRADES and
    MIDPOINT bars, historical and real-time; the midpoint of the quote is there all day)."""
    return "MIDPOINT" if contract.secType in ("CASH", "OPT") else "TRADES"


# --- from ib_async ----------------------------------------------------------------------


def historical_bar(symbol: str, bar: BarData) -> Bar:
    moment = bar.date
    if not isinstance(moment, datetime):  # daily bars come as dates
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    return Bar(symbol, moment.astimezone(UTC), bar.open, bar.high, bar.low, bar.close,
               max(bar.volume, 0.0))


def realtime_bar(symbol: str, bar: RealTimeBar) -> Bar:
    """IB's MIDPOINT (and BID, ASK) bars have no volume: it sends -1, here 0, as for
    historical bars (a currency's, an option's)."""
    volume = 0.0 if bar.volume == -1 else bar.volume
    return Bar(symbol, bar.time.astimezone(UTC), bar.open_, bar.high, bar.low, bar.close,
               volume)


def broker_order(trade: Trade, symbol: str) -> BrokerOrder:
    order, status = trade.order, trade.orderStatus
    return BrokerOrder(
        order_ref=order.orderRef or "",
        ib_order_id=order.orderId,
        perm_id=order.permId,
        client_id=order.clientId,
        symbol=symbol,
        side=Side(order.action),
        quantity=float(order.totalQuantity),
        filled=float(status.filled or trade.filled()),
        status=order_status(trade),
        order_type=order.orderType,
        limit_price=price(order.lmtPrice),
        stop_price=price(order.auxPrice),
        avg_price=status.avgFillPrice or 0.0,
    )


def order_update(trade: Trade, time: datetime) -> OrderUpdate:
    status = trade.orderStatus
    return OrderUpdate(
        order_ref=trade.order.orderRef,
        status=order_status(trade),
        filled=float(status.filled),
        remaining=float(status.remaining),
        avg_price=float(status.avgFillPrice or 0.0),
        time=time,
        message=trade.log[-1].message if trade.log else "",
        ib_order_id=trade.order.orderId,
        perm_id=trade.order.permId or status.permId or None,
    )


def fill(ib_fill: IBFill, symbol: str) -> Fill:
    execution = ib_fill.execution
    return Fill(
        exec_id=execution.execId,
        order_ref=execution.orderRef or "",
        perm_id=execution.permId,
        time=execution.time.astimezone(UTC),
        symbol=symbol,
        side=Side.BUY if execution.side == "BOT" else Side.SELL,
        quantity=float(execution.shares),
        price=float(execution.price),
    )


def with_commission(fill: Fill, report: CommissionReport) -> Fill:
    return replace(
        fill, commission=float(report.commission), realized_pnl=price(report.realizedPNL)
    )


def position(ib_position: IBPosition, symbol: str, item: PortfolioItem | None = None) -> Position:
    """A position; with its market value when the account's portfolio has an `item` for it."""
    return Position(
        symbol=symbol,
        quantity=ib_position.position,
        avg_cost=ib_position.avgCost,
        market_price=price(item.marketPrice) if item else None,
        unrealized_pnl=price(item.unrealizedPNL) if item else None,
        realized_pnl=price(item.realizedPNL) if item else None,
        sec_type=ib_position.contract.secType,
        multiplier=multiplier(ib_position.contract.multiplier),
    )


def multiplier(text: str | None) -> float:
    """IB's multiplier (text on a contract: "100"; empty for a stock) as a number."""
    try:
        value = float(text) if text else 1.0
    except ValueError:
        return 1.0
    return value if math.isfinite(value) and value > 0 else 1.0


def account_number(value: str, currency: str) -> float | None:
    """An account value as a number, if it is one and counts in the account's currency."""
    if currency not in ACCOUNT_CURRENCIES:
        return None
    try:
        return float(value)
    except ValueError:
        return None


# The account summary's tags, by the AccountSummary field each fills.
SUMMARY_TAGS = {
    "NetLiquidation": "net_liquidation",
    "TotalCashValue": "cash",
    "BuyingPower": "buying_power",
    "InitMarginReq": "init_margin",
    "MaintMarginReq": "maint_margin",
    "AvailableFunds": "available_funds",
    "ExcessLiquidity": "excess_liquidity",
    "RealizedPnL": "realized_pnl",
    "UnrealizedPnL": "unrealized_pnl",
    "GrossPositionValue": "gross_position_value",
}


def account_summary(values: Iterable[AccountValue]) -> AccountSummary:
    """IB's account summary of one account as an AccountSummary. A ledger tag (the PnL) comes
    once per currency and once as BASE, IB's sum over them: BASE wins, then the account's own
    currency; a value in another currency, or not a number, is left out (None)."""
    best: dict[str, tuple[int, float]] = {}
    currency = ""
    for value in values:
        name = SUMMARY_TAGS.get(value.tag)
        number = account_number(value.value, value.currency)
        if name is None or number is None or not math.isfinite(number):
            continue
        rank = {"BASE": 0, "": 2}.get(value.currency, 1)
        if name not in best or rank < best[name][0]:
            best[name] = (rank, number)
        if rank == 1:
            currency = currency or value.currency
    return AccountSummary(currency or "USD", **{name: v for name, (_, v) in best.items()})


# IB's msgType of a news bulletin.
_BULLETIN_KINDS = {
    1: BulletinKind.NEWS,
    2: BulletinKind.EXCHANGE_UNAVAILABLE,
    3: BulletinKind.EXCHANGE_AVAILABLE,
}


def bulletin(ib_bulletin: NewsBulletin) -> Bulletin:
    return Bulletin(
        ib_bulletin.msgId,
        _BULLETIN_KINDS.get(ib_bulletin.msgType, BulletinKind.NEWS),
        ib_bulletin.message.strip(),
        ib_bulletin.origExchange,
    )


def headline(news: HistoricalNews) -> Headline:
    """IB's time of a headline comes without a zone: it is UTC."""
    time = news.time if news.time.tzinfo else news.time.replace(tzinfo=UTC)
    return Headline(time.astimezone(UTC), news.providerCode, news.articleId, news.headline)


def scan_row(rank: int, symbol: str, ticker: Ticker | None) -> ScanRow:
    """A scanner's line with the numbers of a market-data snapshot (None where IB had none)."""
    if ticker is None:
        return ScanRow(rank, symbol, None, None, None)
    last, close = price(ticker.last), price(ticker.close)
    change = (last / close - 1) * 100 if last is not None and close else None
    volume = ticker.volume if ticker.volume == ticker.volume and ticker.volume >= 0 else None
    return ScanRow(rank, symbol, last, change, volume)


# --- options ------------------------------------------------------------------------------


def option_chain(underlying: str, chains: list[IBOptionChain]) -> OptionChain | None:
    """IB's chains of an underlying (one row per exchange) as one: SMART's row, where IB
    routes an option order, else the exchanges' expiries and strikes together."""
    if not chains:
        return None
    smart = [c for c in chains if c.exchange == "SMART"]
    rows = smart or chains
    return OptionChain(
        underlying=underlying,
        exchange=rows[0].exchange if smart else "SMART",
        multiplier=multiplier(rows[0].multiplier),
        expirations=tuple(sorted({e for row in rows for e in row.expirations})),
        strikes=tuple(sorted({float(k) for row in rows for k in row.strikes})),
    )


def _number(value: float | None) -> float | None:
    """A greek (which may be negative), or None for IB's marks of "not computed"."""
    if value is None or not math.isfinite(value) or value == UNSET_DOUBLE or abs(value) >= 1e300:
        return None
    return float(value)


def greeks(ticker: Ticker) -> Greeks:
    """IB's model greeks; the bid's, the ask's or the last trade's where IB sent no model."""
    found: OptionComputation | None = next(
        (g for g in (ticker.modelGreeks, ticker.bidGreeks, ticker.askGreeks, ticker.lastGreeks)
         if g is not None),
        None,
    )
    if found is None:
        return Greeks()
    return Greeks(
        implied_vol=_number(found.impliedVol),
        delta=_number(found.delta),
        gamma=_number(found.gamma),
        theta=_number(found.theta),
        vega=_number(found.vega),
        underlying_price=price(found.undPrice),
        option_price=price(found.optPrice),
    )


def option_quote(symbol: str, ticker: Ticker) -> OptionQuote:
    return OptionQuote(
        symbol=symbol,
        bid=price(ticker.bid),
        ask=price(ticker.ask),
        last=price(ticker.last),
        greeks=greeks(ticker),
        multiplier=multiplier(ticker.contract.multiplier if ticker.contract else ""),
    )
