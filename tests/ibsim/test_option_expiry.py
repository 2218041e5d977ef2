"""Option expiry on the simulated clock: exercise and assignment into the stock at the strike,
worthless expiry, and what the client is told."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Option

from ibsim import SimGateway
from ibsim.settlement import closing_price

from .conftest import START, connect, settle, step

AAPL = 265598
EXPIRY_CLOSE = dt.datetime(2024, 3, 8, 21, 0, tzinfo=dt.UTC)  # Friday 16:00 New York


async def _options(ib: IB, *legs: tuple[int, str]) -> list[Option]:
    (chain,) = await asyncio.wait_for(ib.reqSecDefOptParamsAsync("AAPL", "", "STK", AAPL), 5)
    wanted = [Option("AAPL", "20240308", chain.strikes[15 + i], r, "SMART") for i, r in legs]
    return await ib.qualifyContractsAsync(*wanted)


async def test_exercise_assignment_and_worthless_expiry(gw: SimGateway, ib: IB) -> None:
    itm_call, otm_call, itm_put = await _options(ib, (-10, "C"), (10, "C"), (10, "P"))
    for opt, action in ((itm_call, "BUY"), (otm_call, "BUY"), (itm_put, "SELL")):
        ib.placeOrder(opt, MarketOrder(action, 2))
    await settle(ib)
    account = gw.account("DU1234567")
    premium_otm = account.positions[otm_call.conId].avg_cost * 2
    cash_before = account.cash
    realized_before = account.realized_pnl
    resting = ib.placeOrder(otm_call, LimitOrder("SELL", 1, 999.0, tif="GTC"))  # never fills
    await settle(ib)

    await step(gw, ib, (EXPIRY_CLOSE - gw.now).total_seconds() - 60)
    assert "AAPL" not in gw.positions() and len(gw.positions()) == 3
    await step(gw, ib, 120)

    price = closing_price(gw.market, gw.spec("AAPL"), EXPIRY_CLOSE.timestamp())
    assert itm_call.strike < price < otm_call.strike  # ±50 around the money: true for this seed
    # Long ITM call: +200 shares at its strike; short ITM put: assigned, +200 at its strike.
    assert gw.positions()["AAPL"] == 400
    assert account.cash == pytest.approx(
        cash_before - 200 * itm_call.strike - 200 * itm_put.strike, abs=1e-6
    )
    stock = account.positions[AAPL]
    assert stock.avg_price == pytest.approx((itm_call.strike + itm_put.strike) / 2)
    for opt in (itm_call, otm_call, itm_put):
        assert account.positions[opt.conId].quantity == 0
    # The worthless call's premium is lost; the rest of the options' PnL is their premiums too.
    (worthless,) = [e for e in gw.settlement.history if e.option.con_id == otm_call.conId]
    assert worthless.shares == 0 and worthless.realized_pnl == pytest.approx(-premium_otm)
    assert account.realized_pnl == pytest.approx(
        realized_before + sum(e.realized_pnl for e in gw.settlement.history)
    )

    # The client is told: positions, portfolio; the resting order on the option is cancelled.
    await settle(ib)
    positions = {p.contract.conId: p.position for p in ib.positions()}
    assert positions[AAPL] == 400
    assert all(not positions.get(o.conId) for o in (itm_call, otm_call, itm_put))
    portfolio = {p.contract.conId for p in ib.portfolio()}
    assert AAPL in portfolio and not portfolio & {itm_call.conId, otm_call.conId, itm_put.conId}
    assert resting.orderStatus.status == "Cancelled"


async def test_nothing_happens_before_the_close(gw: SimGateway, ib: IB) -> None:
    (call,) = await _options(ib, (0, "C"))
    ib.placeOrder(call, MarketOrder("BUY", 1))
    await settle(ib)
    await step(gw, ib, (EXPIRY_CLOSE - gw.now).total_seconds() - 5)
    assert gw.account("DU1234567").positions[call.conId].quantity == 1
    assert gw.settlement.history == []


async def test_a_held_option_survives_a_restart_and_settles(tmp_path) -> None:
    """The chain is listed anew at a restart; a held option it no longer lists comes back from
    the state file, and one that expired while the simulator was down is settled at once."""
    state = tmp_path / "ibsim.json"
    async with SimGateway(speed=0, start=START, state_file=state) as gw:
        ib = await connect(gw)
        (weekly,) = await _options(ib, (0, "P"))
        ib.placeOrder(weekly, MarketOrder("BUY", 1))
        await settle(ib)
        ib.disconnect()
    monday = START.replace(day=11)  # 2024-03-11: the 03-08 weekly expired meanwhile
    async with SimGateway(speed=0, start=monday, state_file=state) as gw:
        spec = gw.universe.get(weekly.conId)
        assert spec is not None and spec.local_symbol == weekly.localSymbol
        (done,) = gw.settlement.history
        assert done.option.con_id == weekly.conId and done.contracts == 1
        assert gw.account().positions[weekly.conId].quantity == 0
        price = closing_price(gw.market, gw.spec("AAPL"), EXPIRY_CLOSE.timestamp())
        assert done.shares == (-100 if weekly.strike - price >= 0.01 else 0)
