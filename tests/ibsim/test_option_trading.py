"""Trading options through the real ib_async client: fills at the option's bid/ask, IB's
option commissions, positions and PnL with the multiplier of 100."""

from __future__ import annotations

import asyncio

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Option

from ibsim import SimGateway

from .conftest import settle, step


async def _option(ib: IB, right: str = "C", expiry: str = "20240419", offset: int = 0) -> Option:
    (chain,) = await asyncio.wait_for(ib.reqSecDefOptParamsAsync("AAPL", "", "STK", 265598), 5)
    (opt,) = await ib.qualifyContractsAsync(
        Option("AAPL", expiry, chain.strikes[15 + offset], right, "SMART")
    )
    return opt


def _quote(gw: SimGateway, opt: Option):
    return gw.market.quote(gw.universe.get(opt.conId), gw.clock.now())


async def test_round_trip_fills_commissions_and_realized_pnl(gw: SimGateway, ib: IB) -> None:
    opt = await _option(ib)
    ask = _quote(gw, opt).ask
    buy = ib.placeOrder(opt, MarketOrder("BUY", 3))
    await settle(ib)
    assert buy.orderStatus.status == "Filled" and buy.orderStatus.avgFillPrice == ask
    (fill,) = buy.fills
    assert fill.execution.side == "BOT" and fill.execution.shares == 3
    assert fill.contract.secType == "OPT" and fill.contract.conId == opt.conId
    assert fill.commissionReport.commission == pytest.approx(1.95)  # 3 x $0.65
    cash = gw.account("DU1234567").cash
    assert cash == pytest.approx(1_000_000 - ask * 100 * 3 - 1.95)
    (pos,) = [p for p in ib.positions() if p.contract.conId == opt.conId]
    assert pos.position == 3 and pos.avgCost == pytest.approx(ask * 100 + 0.65)
    (item,) = [p for p in ib.portfolio() if p.contract.conId == opt.conId]
    assert item.contract.right == "C" and item.contract.multiplier == "100"
    assert item.marketValue == pytest.approx(item.marketPrice * 100 * 3, abs=0.01)

    await step(gw, ib, 600)
    bid = _quote(gw, opt).bid
    sell = ib.placeOrder(opt, MarketOrder("SELL", 3))
    await settle(ib)
    assert sell.orderStatus.status == "Filled" and sell.orderStatus.avgFillPrice == bid
    report = sell.fills[0].commissionReport
    assert report.commission == pytest.approx(1.95)
    assert report.realizedPNL == pytest.approx((bid - ask) * 100 * 3 - 1.95 - 1.95, abs=1e-6)
    assert gw.account("DU1234567").cash == pytest.approx(
        1_000_000 + (bid - ask) * 100 * 3 - 3.9, abs=1e-6
    )
    assert [p for p in ib.positions() if p.contract.conId == opt.conId and p.position] == []


async def test_one_contract_pays_the_minimum(gw: SimGateway, ib: IB) -> None:
    opt = await _option(ib, "P")
    trade = ib.placeOrder(opt, MarketOrder("BUY", 1))
    await settle(ib)
    assert trade.fills[0].commissionReport.commission == 1.0
    assert trade.fills[0].execution.exchange == "CBOE"


async def test_limit_order_rests_below_the_ask(gw: SimGateway, ib: IB) -> None:
    opt = await _option(ib)
    q = _quote(gw, opt)
    limit = round(q.bid - 0.5, 2)
    trade = ib.placeOrder(opt, LimitOrder("BUY", 1, limit))
    await settle(ib)
    assert trade.orderStatus.status == "Submitted"
    marketable = ib.placeOrder(opt, LimitOrder("BUY", 1, round(q.ask + 0.05, 2)))
    await settle(ib)
    assert marketable.orderStatus.status == "Filled"
    assert marketable.orderStatus.avgFillPrice == q.ask
