"""Account values, portfolio, positions, PnL, summaries, several accounts, executions across
clients, and IB's per-client open-order semantics."""

from __future__ import annotations

import asyncio

import pytest
from ib_async import IB, ExecutionFilter, LimitOrder, MarketOrder, StartupFetch, Stock

from ibsim import SimGateway

from .conftest import START, connect, settle, step


async def _aapl(ib: IB) -> Stock:
    (c,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    return c


def _values(ib: IB) -> dict[str, float]:
    return {
        v.tag: float(v.value)
        for v in ib.accountValues()
        if v.currency == "USD" and v.tag != "Currency"
    }


async def test_account_values_portfolio_and_pnl(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    buy = ib.placeOrder(aapl, MarketOrder("BUY", 100))
    await settle(ib)
    cost = buy.orderStatus.avgFillPrice * 100
    values = _values(ib)
    assert values["TotalCashValue"] == pytest.approx(1_000_000 - cost - 1.0)
    (item,) = ib.portfolio()
    assert item.position == 100 and item.averageCost == pytest.approx(cost / 100 + 0.01)
    (pos,) = ib.positions()
    assert pos.avgCost == pytest.approx(item.averageCost)
    await step(gw, ib, 600)
    sell = ib.placeOrder(aapl, MarketOrder("SELL", 100))
    await settle(ib)
    realized = (sell.orderStatus.avgFillPrice - buy.orderStatus.avgFillPrice) * 100 - 2.0
    assert sell.fills[0].commissionReport.realizedPNL == pytest.approx(realized)
    values = _values(ib)
    assert values["RealizedPnL"] == pytest.approx(realized)
    assert values["NetLiquidation"] == pytest.approx(1_000_000 + realized)
    assert ib.positions() == [] and ib.portfolio() == []
    for key in ("BuyingPower", "AvailableFunds", "ExcessLiquidity", "UnrealizedPnL"):
        assert key in values
    summary = {v.tag: v.value for v in await ib.accountSummaryAsync()}
    assert float(summary["NetLiquidation"]) == pytest.approx(1_000_000 + realized)
    assert summary["AccountType"] == "INDIVIDUAL"
    pnl = ib.reqPnL("DU1234567")
    await settle(ib)
    assert pnl.realizedPnL == pytest.approx(realized, abs=0.01)


async def test_several_accounts() -> None:
    async with SimGateway(speed=0, start=START, account=["DU111", "DU222"], cash=50_000) as gw:
        ib = await connect(gw)
        try:
            assert ib.managedAccounts() == ["DU111", "DU222"]
            aapl = await _aapl(ib)
            ib.placeOrder(aapl, MarketOrder("BUY", 10, account="DU222"))
            await settle(ib)
            assert gw.positions("DU222") == {"AAPL": 10} and gw.positions("DU111") == {}
            cash = {
                v.account: float(v.value)
                for v in ib.accountValues()
                if v.tag == "TotalCashValue" and v.currency == "USD"
            }
            assert cash["DU111"] == 50_000 and cash["DU222"] < 50_000
            positions = await ib.reqPositionsAsync()
            assert [(p.account, p.position) for p in positions] == [("DU222", 10.0)]
        finally:
            ib.disconnect()


async def test_executions_and_orders_across_clients(gw: SimGateway, ib: IB) -> None:
    other = await connect(gw, 2)
    try:
        aapl = await _aapl(ib)
        price = gw.price("AAPL")
        ib.placeOrder(aapl, MarketOrder("BUY", 10, orderRef="a-fill"))
        other.placeOrder(aapl, MarketOrder("SELL", 3, orderRef="b-fill"))
        resting = ib.placeOrder(aapl, LimitOrder("BUY", 1, round(price - 5, 2), orderRef="a-open"))
        await settle(ib, other)
        # An empty filter returns the account's executions from every client.
        execs = await other.reqExecutionsAsync()
        assert sorted(f.execution.orderRef for f in execs) == ["a-fill", "b-fill"]
        assert all(f.commissionReport.commission > 0 for f in other.fills())
        mine = await other.reqExecutionsAsync(ExecutionFilter(clientId=2))
        assert [f.execution.orderRef for f in mine] == ["b-fill"]
        sells = await ib.reqExecutionsAsync(ExecutionFilter(side="SELL"))
        assert [f.execution.orderRef for f in sells] == ["b-fill"]
        # reqOpenOrders answers with this client's orders only; reqAllOpenOrders with all.
        assert await other.reqOpenOrdersAsync() == []
        every = await other.reqAllOpenOrdersAsync()
        assert [(t.order.orderRef, t.order.clientId) for t in every] == [("a-open", 1)]
        assert every[0].order.permId == resting.order.permId
        completed = await other.reqCompletedOrdersAsync(False)
        assert sorted(t.order.orderRef for t in completed) == ["a-fill", "b-fill"]
        # Updates of client 1's order still go to client 1 only (client 2 would not know it).
        ib.cancelOrder(resting.order)
        await settle(ib, other)
        assert resting.orderStatus.status == "Cancelled"
    finally:
        other.disconnect()


async def test_reconnect_after_dropped_connection_resyncs(gw: SimGateway) -> None:
    ib = await connect(gw, 5)
    aapl = await _aapl(ib)
    ib.placeOrder(aapl, MarketOrder("BUY", 7, orderRef="before"))
    resting = ib.placeOrder(aapl, LimitOrder("BUY", 1, round(gw.price("AAPL") - 5, 2)))
    await settle(ib)
    disconnected = asyncio.Event()
    ib.disconnectedEvent += disconnected.set
    gone = asyncio.ensure_future(gw.hooks.client_disconnected.wait(timeout=5))
    gw.faults.drop_connections()
    await asyncio.wait_for(disconnected.wait(), 5)
    await gone
    assert not ib.isConnected() and gw.clients == []
    ib2 = await connect(gw, 5)
    try:
        assert [p.position for p in ib2.positions()] == [7.0]
        (trade,) = ib2.openTrades()
        assert trade.order.permId == resting.order.permId
        assert trade.orderStatus.status == "Submitted"
        assert [f.execution.orderRef for f in ib2.fills()] == ["before"]
        # The re-synced order is fully usable: cancel it from the new connection.
        ib2.cancelOrder(trade.order)
        await settle(ib2)
        assert trade.orderStatus.status == "Cancelled"
    finally:
        ib2.disconnect()


async def test_updates_for_orders_from_a_previous_connection(gw: SimGateway) -> None:
    """A fill of an order placed before a reconnect reaches the new connection with an
    openOrder first, even before the client re-synced its open orders."""
    ib = await connect(gw, 6)
    aapl = await _aapl(ib)
    spec = gw.spec("AAPL")
    k0 = int(gw.clock.now() // 5)
    steps = gw.market.cache.steps(gw.market.sources[spec.con_id], k0, k0 + 360)
    limit = round(steps.low.min() * 0.01 + 0.02, 2)
    resting = ib.placeOrder(aapl, LimitOrder("BUY", 1, limit))
    await settle(ib)
    gone = asyncio.ensure_future(gw.hooks.client_disconnected.wait(timeout=5))
    ib.disconnect()
    await gone
    fresh = IB()
    await fresh.connectAsync(
        "127.0.0.1", gw.port, clientId=6, timeout=5, fetchFields=StartupFetch.POSITIONS
    )
    try:
        assert fresh.trades() == []
        await step(gw, fresh, 1800)
        (trade,) = fresh.trades()
        assert trade.order.permId == resting.order.permId
        assert trade.orderStatus.status == "Filled"
        assert len(trade.fills) == 1
    finally:
        fresh.disconnect()


async def test_account_summary_has_the_pnl_and_follows_a_fill(gw: SimGateway, ib: IB) -> None:
    """ib_async's summary asks for $LEDGER:ALL, which brings the PnL; the subscription's
    values are sent again after a change (IB: the changed ones, every 3 minutes)."""

    async def summary() -> dict[str, float]:
        return {
            v.tag: float(v.value)
            for v in await ib.accountSummaryAsync("DU1234567")
            if v.currency == "USD" and v.tag != "Currency"
        }

    before = await summary()
    for tag in ("NetLiquidation", "TotalCashValue", "BuyingPower", "InitMarginReq",
                "MaintMarginReq", "AvailableFunds", "ExcessLiquidity", "RealizedPnL",
                "UnrealizedPnL", "GrossPositionValue"):  # fmt: skip
        assert tag in before, tag
    assert before["InitMarginReq"] == 0
    buy = ib.placeOrder(await _aapl(ib), MarketOrder("BUY", 100))
    await settle(ib)
    cost = buy.orderStatus.avgFillPrice * 100
    after = await summary()
    assert after["TotalCashValue"] == pytest.approx(1_000_000 - cost - 1.0)
    assert after["InitMarginReq"] > 0 and after["GrossPositionValue"] > 0
