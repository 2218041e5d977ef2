"""Every order flow, against the simulated market, as ib_async sees it."""

from __future__ import annotations

import math

import pytest
from ib_async import (
    IB,
    Contract,
    LimitOrder,
    MarketOrder,
    Order,
    Stock,
    StopLimitOrder,
    StopOrder,
)

from ibsim import ContractSpec, SimGateway
from ibsim.pricepath import STEP

from .conftest import START, settle, step


async def _aapl(ib: IB) -> Stock:
    (c,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    return c


def _path(gw: SimGateway, symbol: str, seconds: float):
    """The trade-price path (low, high) over the next ``seconds``."""
    spec = gw.spec(symbol)
    k0 = int(gw.clock.now() // STEP)
    steps = gw.market.cache.steps(gw.market.sources[spec.con_id], k0, k0 + int(seconds // STEP))
    return steps.low.min() * spec.min_tick, steps.high.max() * spec.min_tick


async def test_market_order_fills_at_the_ask_with_commission(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    price = gw.price("AAPL")
    fills = []
    ib.execDetailsEvent += lambda trade, fill: fills.append(fill)
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 300, orderRef="mkt-1"))
    await settle(ib)
    assert trade.orderStatus.status == "Filled"
    assert trade.orderStatus.avgFillPrice == pytest.approx(price + 0.01)
    (fill,) = trade.fills
    assert fills == [fill]
    assert fill.execution.orderRef == "mkt-1" and fill.execution.side == "BOT"
    assert fill.execution.permId == trade.order.permId > 0
    assert fill.execution.acctNumber == "DU1234567"
    assert fill.commissionReport.commission == 1.5  # 300 x $0.005
    assert trade.order.permId == gw.orders[-1].perm_id
    sell = ib.placeOrder(aapl, MarketOrder("SELL", 1000))
    await settle(ib)
    assert sell.fills[0].commissionReport.commission == 5.0
    assert sell.fills[0].commissionReport.realizedPNL != 0
    assert gw.positions() == {"AAPL": -700}


async def test_limit_order_rests_then_fills_at_its_limit(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    low, _ = _path(gw, "AAPL", 1800)
    limit = round(low + 0.02, 2)
    assert limit < gw.price("AAPL")
    trade = ib.placeOrder(aapl, LimitOrder("BUY", 10, limit))
    await settle(ib)
    assert trade.orderStatus.status == "Submitted"
    await step(gw, ib, 1800)
    assert trade.orderStatus.status == "Filled"
    assert trade.orderStatus.avgFillPrice == pytest.approx(limit)
    assert gw.positions() == {"AAPL": 10}


async def test_stop_and_stop_limit(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    low, high = _path(gw, "AAPL", 1800)
    price = gw.price("AAPL")
    stop_sell = round(low + 0.05, 2)
    stop_buy = round(high - 0.05, 2)
    assert stop_sell < price < stop_buy
    sell = ib.placeOrder(aapl, StopOrder("SELL", 5, stop_sell))
    buy = ib.placeOrder(aapl, StopLimitOrder("BUY", 5, round(stop_buy + 0.5, 2), stop_buy))
    await settle(ib)
    assert sell.orderStatus.status == buy.orderStatus.status == "Submitted"
    await step(gw, ib, 1800)
    assert sell.orderStatus.status == "Filled" and buy.orderStatus.status == "Filled"
    assert sell.orderStatus.avgFillPrice <= stop_sell
    assert stop_buy <= buy.orderStatus.avgFillPrice <= stop_buy + 0.5


async def test_trailing_stop(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    order = Order(action="SELL", totalQuantity=5, orderType="TRAIL", auxPrice=0.30)
    trade = ib.placeOrder(aapl, order)
    await step(gw, ib, 6 * 3600)
    assert trade.orderStatus.status == "Filled"


async def test_modify_then_fill(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    price = gw.price("AAPL")
    order = LimitOrder("BUY", 10, round(price - 2, 2), orderRef="mod")
    trade = ib.placeOrder(aapl, order)
    await settle(ib)
    perm = trade.order.permId
    order.lmtPrice = round(price - 1, 2)
    order.totalQuantity = 20
    ib.placeOrder(aapl, order)
    await settle(ib)
    assert trade.orderStatus.status == "Submitted"
    assert trade.orderStatus.remaining == 20
    assert gw.open_orders[0].lmt_price == round(price - 1, 2)
    assert gw.open_orders[0].total_quantity == 20
    order.lmtPrice = round(price + 1, 2)
    ib.placeOrder(aapl, order)
    await settle(ib)
    assert trade.orderStatus.status == "Filled" and trade.orderStatus.filled == 20
    assert trade.order.permId == perm
    assert trade.fills[0].execution.orderRef == "mod"


async def test_cancel_and_cancel_errors(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    errors = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append((req_id, code))
    trade = ib.placeOrder(aapl, LimitOrder("BUY", 1, round(gw.price("AAPL") - 5, 2)))
    await settle(ib)
    ib.cancelOrder(trade.order)
    await settle(ib)
    assert trade.orderStatus.status == "Cancelled"
    assert (trade.order.orderId, 202) in errors
    filled = ib.placeOrder(aapl, MarketOrder("BUY", 1))
    await settle(ib)
    ib.client.cancelOrder(filled.order.orderId)
    ib.client.cancelOrder(99999)
    await settle(ib)
    assert (filled.order.orderId, 10148) in errors
    assert (99999, 10147) in errors
    assert filled.orderStatus.status == "Filled"


async def test_global_cancel_cancels_every_clients_orders(gw: SimGateway, ib: IB) -> None:
    other = IB()
    await other.connectAsync("127.0.0.1", gw.port, clientId=2, timeout=5)
    try:
        aapl = await _aapl(ib)
        price = round(gw.price("AAPL") - 3, 2)
        mine = ib.placeOrder(aapl, LimitOrder("BUY", 1, price))
        theirs = other.placeOrder(aapl, LimitOrder("BUY", 1, price))
        await settle(ib, other)
        assert len(gw.open_orders) == 2
        ib.reqGlobalCancel()
        await settle(ib, other)
        assert mine.orderStatus.status == "Cancelled"
        assert theirs.orderStatus.status == "Cancelled"
        assert gw.open_orders == []
    finally:
        other.disconnect()


async def test_bracket_children_wait_for_transmit_and_parent_fill(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    price = gw.price("AAPL")
    low, high = _path(gw, "AAPL", 4 * 3600)
    parent, take_profit, stop_loss = ib.bracketOrder(
        "BUY", 100, round(price + 0.05, 2), round(high - 0.05, 2), round(low - 1.0, 2)
    )
    t_parent = ib.placeOrder(aapl, parent)
    t_tp = ib.placeOrder(aapl, take_profit)
    await settle(ib)
    # Nothing is transmitted until the last child (transmit=True) arrives.
    assert t_parent.orderStatus.status == "PendingSubmit"
    assert gw.open_orders == []
    t_sl = ib.placeOrder(aapl, stop_loss)
    await settle(ib)
    assert t_parent.orderStatus.status == "Filled"
    assert t_tp.orderStatus.status == "Submitted" and t_sl.orderStatus.status == "Submitted"
    await step(gw, ib, 4 * 3600)
    assert t_tp.orderStatus.status == "Filled"
    assert t_sl.orderStatus.status == "Cancelled"
    assert gw.positions() == {}


async def test_bracket_children_held_until_parent_fills(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    low, _ = _path(gw, "AAPL", 1800)
    entry = round(low + 0.02, 2)
    parent, tp, sl = ib.bracketOrder("BUY", 10, entry, round(entry + 50, 2), round(entry - 50, 2))
    trades = [ib.placeOrder(aapl, o) for o in (parent, tp, sl)]
    await settle(ib)
    assert [t.orderStatus.status for t in trades] == ["Submitted", "PreSubmitted", "PreSubmitted"]
    await step(gw, ib, 1800)
    assert [t.orderStatus.status for t in trades] == ["Filled", "Submitted", "Submitted"]
    ib.cancelOrder(trades[1].order)
    await settle(ib)
    assert trades[2].orderStatus.status == "Submitted"


async def test_cancelling_a_bracket_parent_cancels_children(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    entry = round(gw.price("AAPL") - 5, 2)
    trades = [
        ib.placeOrder(aapl, o) for o in ib.bracketOrder("BUY", 10, entry, entry + 10, entry - 10)
    ]
    await settle(ib)
    ib.cancelOrder(trades[0].order)
    await settle(ib)
    assert [t.orderStatus.status for t in trades] == ["Cancelled"] * 3


async def test_oca_group(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    ib.placeOrder(aapl, MarketOrder("BUY", 10))
    low, high = _path(gw, "AAPL", 4 * 3600)
    orders = [
        LimitOrder("SELL", 10, round(high - 0.05, 2)),
        StopOrder("SELL", 10, round(low - 1, 2)),
        LimitOrder("SELL", 10, round(high + 5, 2)),
    ]
    ib.oneCancelsAll(orders, "oca-1", 1)
    trades = [ib.placeOrder(aapl, o) for o in orders]
    await settle(ib)
    assert [t.orderStatus.status for t in trades] == ["Submitted"] * 3
    await step(gw, ib, 4 * 3600)
    assert [t.orderStatus.status for t in trades] == ["Filled", "Cancelled", "Cancelled"]
    assert gw.positions() == {}
    late = LimitOrder("SELL", 10, round(high + 5, 2), ocaGroup="oca-1", ocaType=1)
    assert ib.placeOrder(aapl, late).orderStatus.status == "PendingSubmit"
    await settle(ib)
    assert gw.orders[-1].status == "Cancelled"


async def test_oca_reduce_type(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    price = gw.price("AAPL")
    orders = [LimitOrder("BUY", 10, round(price - 5, 2)), LimitOrder("BUY", 4, round(price + 1, 2))]
    ib.oneCancelsAll(orders, "oca-2", 3)
    trades = [ib.placeOrder(aapl, o) for o in orders]
    await settle(ib)
    assert trades[1].orderStatus.status == "Filled"
    assert trades[0].orderStatus.status == "Submitted"
    assert trades[0].order.totalQuantity == 6


async def test_partial_fills_when_order_exceeds_bar_volume() -> None:
    thin = ContractSpec(
        symbol="THIN", sec_type="STK", exchange="SMART", primary_exchange="NYSE",
        currency="USD", con_id=424242, min_tick=0.01, long_name="THIN TRADING CORP",
        schedule_name="us_equity", base_price=20.0, daily_volume=46_800.0,
        valid_exchanges="SMART,NYSE",
    )  # fmt: skip
    async with SimGateway(speed=0, start=START, contracts=[thin]) as gw:
        ib = IB()
        await ib.connectAsync("127.0.0.1", gw.port, clientId=1, timeout=5, raiseSyncErrors=True)
        try:
            (c,) = await ib.qualifyContractsAsync(Stock("THIN", "SMART", "USD"))
            trade = ib.placeOrder(c, MarketOrder("BUY", 100))
            await settle(ib)
            assert 0 < trade.orderStatus.filled < 100
            assert trade.orderStatus.status == "Submitted"
            await step(gw, ib, 120)
            assert trade.orderStatus.status == "Filled"
            assert len(trade.fills) > 1
            assert sum(f.execution.shares for f in trade.fills) == 100
            assert trade.fills[-1].execution.cumQty == 100
            for f in trade.fills:  # $1 minimum, capped at 1% of the trade value (IB's rule)
                value = f.execution.shares * f.execution.price
                assert f.commissionReport.commission == pytest.approx(min(1.0, 0.01 * value))
        finally:
            ib.disconnect()


@pytest.mark.parametrize(
    ("order", "reason"),
    [
        (MarketOrder("BUY", 0), "quantity must be positive"),
        (MarketOrder("SELL", -5), "quantity must be positive"),
        (Order(action="BUY", totalQuantity=1, orderType="LMT"), "Missing limit price"),
        (LimitOrder("BUY", 1, 100.005), "minimum price variation"),
        (StopOrder("SELL", 1, 99.999), "minimum price variation"),
        (Order(action="BUY", totalQuantity=1, orderType="MOC"), "Unsupported order type"),
        (MarketOrder("BUY", 1.5), "size increment"),
    ],
)
async def test_rejections(gw: SimGateway, ib: IB, order: Order, reason: str) -> None:
    aapl = await _aapl(ib)
    errors = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append((req_id, code, text))
    trade = ib.placeOrder(aapl, order)
    await settle(ib)
    assert trade.orderStatus.status == "Cancelled"
    ((req_id, code, text),) = errors
    assert req_id == trade.order.orderId and code == 201 and reason in text
    assert gw.orders == []


async def test_unknown_con_id_is_error_200(gw: SimGateway, ib: IB) -> None:
    errors = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append(code)
    trade = ib.placeOrder(Contract(conId=1234, exchange="SMART"), MarketOrder("BUY", 1))
    await settle(ib)
    assert errors == [200] and trade.orderStatus.status == "Cancelled"


async def test_ioc_and_day_expiry(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    price = gw.price("AAPL")
    ioc = ib.placeOrder(aapl, LimitOrder("BUY", 1, round(price - 5, 2), tif="IOC"))
    day = ib.placeOrder(aapl, LimitOrder("BUY", 1, round(price - 50, 2), tif="DAY"))
    gtc = ib.placeOrder(aapl, LimitOrder("BUY", 1, round(price - 50, 2), tif="GTC"))
    await settle(ib)
    assert ioc.orderStatus.status == "Cancelled"
    assert day.orderStatus.status == "Submitted"
    await step(gw, ib, 6.5 * 3600)
    assert day.orderStatus.status == "Cancelled"
    assert gtc.orderStatus.status == "Submitted"


async def test_market_order_outside_hours_waits_for_the_open(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    await gw.advance(6.5 * 3600)  # 16:30
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 1, tif="GTC"))
    await settle(ib)
    assert trade.orderStatus.status == "Submitted"
    await step(gw, ib, 17 * 3600 + 5)  # the next day's 09:30:05
    assert trade.orderStatus.status == "Filled"
    assert trade.fills[0].execution.time.hour == 14 and trade.fills[0].execution.time.minute == 30


async def test_what_if(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    state = await ib.whatIfOrderAsync(aapl, MarketOrder("BUY", 100))
    assert float(state.initMarginChange) == pytest.approx(gw.price("AAPL") * 100 * 0.5, rel=1e-3)
    assert float(state.maintMarginChange) == pytest.approx(gw.price("AAPL") * 100 * 0.25, rel=1e-3)
    assert gw.orders == []


async def test_commissions_per_asset_class(gw: SimGateway, ib: IB) -> None:
    from ib_async import Crypto, Forex, Future

    eur, btc, es = await ib.qualifyContractsAsync(
        Forex("EURUSD"), Crypto("BTC", "PAXOS", "USD"), Future("ES", "202403", exchange="CME")
    )
    trades = [
        ib.placeOrder(eur, MarketOrder("BUY", 20000)),
        ib.placeOrder(btc, MarketOrder("BUY", 0.01)),
        ib.placeOrder(es, MarketOrder("BUY", 2)),
    ]
    await settle(ib)
    commissions = [t.fills[0].commissionReport.commission for t in trades]
    assert commissions == [2.0, 1.75, 4.5]
    positions = {p.contract.symbol: p for p in ib.positions()}
    assert positions["ES"].avgCost == pytest.approx(trades[2].orderStatus.avgFillPrice * 50 + 2.25)
    assert math.isclose(positions["BTC"].position, 0.01)


async def test_executions_and_completed_orders_are_the_current_days_only(
    gw: SimGateway, ib: IB
) -> None:
    """As IB: reqExecutions and reqCompletedOrders list what happened since midnight (the
    gateway's time zone); yesterday's are gone from them, never from the positions."""
    aapl = await _aapl(ib)
    ib.placeOrder(aapl, MarketOrder("BUY", 5, orderRef="yesterday"))
    await settle(ib)
    assert [f.execution.orderRef for f in await ib.reqExecutionsAsync()] == ["yesterday"]
    assert [t.order.orderRef for t in await ib.reqCompletedOrdersAsync(False)] == ["yesterday"]
    await step(gw, ib, 24 * 3600)
    ib.placeOrder(aapl, MarketOrder("BUY", 2, orderRef="today"))
    await settle(ib)
    assert [f.execution.orderRef for f in await ib.reqExecutionsAsync()] == ["today"]
    assert [t.order.orderRef for t in await ib.reqCompletedOrdersAsync(False)] == ["today"]
    assert gw.positions() == {"AAPL": 7}
