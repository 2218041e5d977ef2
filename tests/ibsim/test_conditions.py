"""Conditional orders as ib_async places them: held PreSubmitted until their conditions are met
on the simulated clock and market, then working like any order (issue 12)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from ib_async import (
    IB,
    ExecutionCondition,
    LimitOrder,
    MarginCondition,
    MarketOrder,
    PercentChangeCondition,
    PriceCondition,
    Stock,
    TimeCondition,
    VolumeCondition,
)

from ibsim import SimGateway
from ibsim import conditions as sim
from ibsim.conditions import PriceCondition as SimPrice
from ibsim.conditions import TimeCondition as SimTime
from ibsim.conditions import all_met, from_json, parse_time, to_json
from ibsim.pricepath import STEP

from .conftest import START, connect, settle, step

NEW_YORK = ZoneInfo("America/New_York")


async def _aapl(ib: IB) -> Stock:
    (c,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    return c


def _lasts(gw: SimGateway, symbol: str, steps: int) -> list[float]:
    """The last price the conditions see at the end of each of the next ``steps`` steps."""
    spec = gw.spec(symbol)
    now = gw.clock.now()
    return [gw.market.quote(spec, now + i * STEP).last for i in range(1, steps + 1)]


def _crossing(gw: SimGateway, symbol: str, steps: int = 60) -> tuple[float, int]:
    """A price above the current one and the first step (1-based) whose end reaches it."""
    lasts = _lasts(gw, symbol, steps)
    level = max(lasts)
    assert level > gw.price(symbol), "the seeded path must rise in the window"
    return level, lasts.index(level) + 1


def _at(gw: SimGateway, seconds: float) -> str:
    """A TimeCondition time ``seconds`` after now, in New York time with its zone."""
    t = dt.datetime.fromtimestamp(gw.clock.now() + seconds, NEW_YORK)
    return t.strftime("%Y%m%d %H:%M:%S") + " America/New_York"


def _above(aapl: Stock, price: float, **kw) -> PriceCondition:
    return PriceCondition(isMore=True, price=price, conId=aapl.conId, exch="SMART", **kw)


async def test_price_condition_holds_the_order_until_the_price_crosses(
    gw: SimGateway, ib: IB
) -> None:
    aapl = await _aapl(ib)
    level, j = _crossing(gw, "AAPL")
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 100, conditions=[_above(aapl, level)]))
    await settle(ib)
    assert trade.orderStatus.status == "PreSubmitted"
    assert not trade.fills
    if j > 1:
        await step(gw, ib, (j - 1) * STEP)
        assert trade.orderStatus.status == "PreSubmitted"
    await step(gw, ib, STEP)
    assert trade.orderStatus.status == "Filled"
    (fill,) = trade.fills
    assert fill.execution.time.timestamp() == pytest.approx(gw.clock.now())
    assert gw.positions() == {"AAPL": 100}


async def test_a_met_condition_leaves_a_limit_order_working(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    limit = round(gw.price("AAPL") - 20, 2)
    cond = TimeCondition(isMore=True, time=_at(gw, 60))
    trade = ib.placeOrder(aapl, LimitOrder("BUY", 10, limit, conditions=[cond]))
    await step(gw, ib, 30)
    assert trade.orderStatus.status == "PreSubmitted"
    await step(gw, ib, 60)
    assert trade.orderStatus.status == "Submitted"
    assert not trade.fills


async def test_time_condition_fills_after_the_time(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    cond = TimeCondition(isMore=True, time=_at(gw, 600))
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 10, conditions=[cond]))
    await step(gw, ib, 595)
    assert trade.orderStatus.status == "PreSubmitted"
    await step(gw, ib, 10)
    assert trade.orderStatus.status == "Filled"
    assert trade.fills[0].execution.time.timestamp() == pytest.approx(START.timestamp() + 600)


async def test_a_time_without_zone_is_gateway_time_and_a_dash_is_utc(gw: SimGateway) -> None:
    assert parse_time("20240304 10:00:00", "America/New_York") == START.timestamp()
    assert parse_time("20240304-15:00:00", "America/New_York") == START.timestamp()
    assert parse_time("20240304 15:00:00 UTC", "America/New_York") == START.timestamp()


async def test_and_waits_for_both(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    level, j = _crossing(gw, "AAPL")
    assert j > 2
    # The time is met after one step, the price only at step j.
    conds = [_above(aapl, level).And(), TimeCondition(isMore=True, time=_at(gw, STEP))]
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 10, conditions=conds))
    await step(gw, ib, (j - 1) * STEP)
    assert trade.orderStatus.status == "PreSubmitted"
    await step(gw, ib, STEP)
    assert trade.orderStatus.status == "Filled"
    # And the other way round: the price is met already, the time in a minute.
    below_now = PriceCondition(isMore=False, price=gw.price("AAPL") + 50, conId=aapl.conId)
    conds = [below_now, TimeCondition(isMore=True, time=_at(gw, 60))]
    second = ib.placeOrder(aapl, MarketOrder("BUY", 10, conditions=conds))
    await step(gw, ib, 55)
    assert second.orderStatus.status == "PreSubmitted"
    await step(gw, ib, 5)
    assert second.orderStatus.status == "Filled"


async def test_or_fills_on_either(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    never = _above(aapl, gw.price("AAPL") * 3).Or()
    by_time = ib.placeOrder(
        aapl, MarketOrder("BUY", 10, conditions=[never, TimeCondition(time=_at(gw, 120))])
    )
    level, j = _crossing(gw, "AAPL", steps=20)
    by_price = ib.placeOrder(
        aapl,
        MarketOrder(
            "BUY", 10, conditions=[_above(aapl, level).Or(), TimeCondition(time=_at(gw, 3600))]
        ),
    )
    await step(gw, ib, j * STEP)
    assert by_price.orderStatus.status == "Filled"
    assert by_time.orderStatus.status == "PreSubmitted"
    await step(gw, ib, 120)
    assert by_time.orderStatus.status == "Filled"


def test_conjunctions_evaluate_left_to_right_without_precedence() -> None:
    def t(hour: int, conj: str = "a") -> SimTime:
        # met at 15:00 UTC when hour <= 15
        return SimTime(conjunction=conj, is_more=True, time=f"20240304-{hour:02d}:00:00")

    now = START.timestamp()

    def met(*conds: SimTime) -> bool:
        return all_met(conds, now, lambda con_id: None, "UTC")

    # (true or false) and false -> false (precedence would give true)
    assert not met(t(14, "o"), t(16, "a"), t(17))
    # (false and true) or true -> true
    assert met(t(16, "a"), t(14, "o"), t(14))
    # a price condition without a quote (market closed) is not met
    assert not all_met([SimPrice(price=1.0, con_id=1)], now, lambda con_id: None, "UTC")


async def test_volume_and_percent_change_conditions(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    quote = gw.market.quote(gw.spec("AAPL"), gw.clock.now())
    volume = VolumeCondition(isMore=True, volume=int(quote.volume) + 1, conId=aapl.conId)
    vol_trade = ib.placeOrder(aapl, MarketOrder("BUY", 10, conditions=[volume]))
    change = (quote.last / quote.prev_close - 1) * 100
    pct = PercentChangeCondition(isMore=False, changePercent=change + 50, conId=aapl.conId)
    pct_trade = ib.placeOrder(aapl, MarketOrder("BUY", 10, conditions=[pct]))
    await settle(ib)
    assert vol_trade.orderStatus.status == "PreSubmitted"
    assert pct_trade.orderStatus.status == "Filled"  # met on placement
    await step(gw, ib, 60)
    assert vol_trade.orderStatus.status == "Filled"


async def test_conditions_cancel_order_cancels_when_met(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    cond = TimeCondition(isMore=True, time=_at(gw, 60))
    trade = ib.placeOrder(
        aapl, MarketOrder("BUY", 10, conditions=[cond], conditionsCancelOrder=True)
    )
    await step(gw, ib, 30)
    assert trade.orderStatus.status == "PreSubmitted"
    await step(gw, ib, 60)
    assert trade.orderStatus.status == "Cancelled"
    assert not trade.fills and gw.positions() == {}


async def test_an_unsupported_condition_is_rejected(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, message, contract: errors.append((req_id, code, message))
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 10, conditions=[MarginCondition(percent=30)]))
    await settle(ib)
    ((req_id, code, message),) = errors
    assert (req_id, code) == (trade.order.orderId, 201)
    assert "Margin conditions (type 4) are not supported" in message
    assert trade.orderStatus.status == "Cancelled"
    assert gw.orders == []
    # A condition on a contract that does not exist is refused as well.
    bad = PriceCondition(price=1.0, conId=999_999_999, exch="SMART")
    ib.placeOrder(aapl, MarketOrder("BUY", 10, conditions=[bad]))
    await settle(ib)
    assert errors[-1][1] == 201 and "Invalid contract id 999999999" in errors[-1][2]
    assert gw.orders == []


async def test_conditions_round_trip_to_a_second_client(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    conds = [
        _above(aapl, round(gw.price("AAPL") * 2, 2), triggerMethod=2).Or(),
        TimeCondition(isMore=True, time=_at(gw, 3600)),
    ]
    order = MarketOrder("BUY", 10, conditions=conds, conditionsIgnoreRth=True)
    trade = ib.placeOrder(aapl, order)
    await settle(ib)
    other = await connect(gw, 2)
    try:
        await other.reqAllOpenOrdersAsync()
        (seen,) = [t for t in other.openTrades() if t.order.permId == trade.order.permId]
        assert seen.order.conditions == conds
        assert seen.order.conditionsIgnoreRth is True
        assert seen.order.conditionsCancelOrder is False
        assert seen.orderStatus.status == "PreSubmitted"
        # Cancelling a conditional order, then the completed order carries them too.
        ib.cancelOrder(trade.order)
        await settle(ib, other)
        assert trade.orderStatus.status == "Cancelled"
        assert gw.open_orders == []
        (done,) = await other.reqCompletedOrdersAsync(apiOnly=False)
        assert done.order.conditions == conds
        assert done.orderStatus.status == "Cancelled"
    finally:
        other.disconnect()


async def test_modifying_a_conditional_order_keeps_it_held(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    cond = TimeCondition(isMore=True, time=_at(gw, 300))
    order = MarketOrder("BUY", 10, conditions=[cond])
    trade = ib.placeOrder(aapl, order)
    await settle(ib)
    order.totalQuantity = 20
    ib.placeOrder(aapl, order)
    await step(gw, ib, 60)
    assert trade.orderStatus.status == "PreSubmitted"
    assert gw.open_orders[0].total_quantity == 20
    await step(gw, ib, 300)
    assert trade.orderStatus.status == "Filled" and gw.positions() == {"AAPL": 20}


def test_conditions_survive_json() -> None:
    cond = SimPrice(conjunction="o", is_more=False, price=101.5, con_id=7, exchange="SMART")
    assert from_json(to_json(cond)) == cond


async def test_a_held_order_survives_a_restart(tmp_path) -> None:
    state = tmp_path / "ibsim.json"
    async with SimGateway(speed=0, start=START, state_file=state) as gw:
        ib = await connect(gw, 1)
        aapl = await _aapl(ib)
        cond = TimeCondition(isMore=True, time=_at(gw, 600))
        ib.placeOrder(aapl, MarketOrder("BUY", 10, conditions=[cond]))
        await settle(ib)
        ib.disconnect()
    async with SimGateway(speed=0, start=START, state_file=state) as gw:
        ib = await connect(gw, 1)
        try:
            (trade,) = ib.openTrades()
            assert trade.order.conditions == [cond]
            assert trade.orderStatus.status == "PreSubmitted"
            await step(gw, ib, 300)
            assert gw.positions() == {}
            await step(gw, ib, 305)
            assert gw.positions() == {"AAPL": 10}
        finally:
            ib.disconnect()


async def test_every_condition_type_is_decoded_as_ib_async_encodes_it(
    gw: SimGateway, ib: IB
) -> None:
    aapl = await _aapl(ib)
    conds = [
        PriceCondition(conjunction="o", isMore=False, price=101.25, conId=aapl.conId,
                       exch="SMART", triggerMethod=4),
        TimeCondition(isMore=True, time="20240304 11:00:00 US/Eastern"),
        MarginCondition(isMore=False, percent=30),
        ExecutionCondition(secType="STK", exch="SMART", symbol="MSFT"),
        VolumeCondition(isMore=True, volume=5000, conId=aapl.conId, exch="SMART"),
        PercentChangeCondition(isMore=False, changePercent=-2.5, conId=aapl.conId, exch="SMART"),
    ]  # fmt: skip
    received = []
    gw.hooks.order_received.connect(received.append)
    ib.placeOrder(
        aapl,
        LimitOrder("BUY", 10, 100.0, conditions=conds, conditionsIgnoreRth=True,
                   conditionsCancelOrder=True, orderRef="after-the-conditions"),
    )  # fmt: skip
    await settle(ib)
    (rec,) = received
    req = rec.request
    assert req.conditions == (
        sim.PriceCondition("o", False, 101.25, aapl.conId, "SMART", 4),
        sim.TimeCondition("a", True, "20240304 11:00:00 US/Eastern"),
        sim.MarginCondition("a", False, 30),
        sim.ExecutionCondition("a", "STK", "SMART", "MSFT"),
        sim.VolumeCondition("a", True, 5000, aapl.conId, "SMART"),
        sim.PercentChangeCondition("a", False, -2.5, aapl.conId, "SMART"),
    )
    assert req.conditions_ignore_rth and req.conditions_cancel_order
    assert (req.order_ref, req.lmt_price) == ("after-the-conditions", 100.0)


async def test_an_execution_condition_is_rejected(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    cond = ExecutionCondition(secType="STK", exch="SMART", symbol="MSFT")
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 10, conditions=[cond]))
    await settle(ib)
    assert trade.orderStatus.status == "Cancelled"
    assert "Execution conditions (type 5) are not supported" in trade.log[-1].message
    assert gw.orders == []


async def test_a_held_day_order_expires_at_the_close(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    cond = TimeCondition(isMore=True, time="20240305 10:00:00 America/New_York")
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 10, conditions=[cond], tif="DAY"))
    await step(gw, ib, 6.5 * 3600)  # past 16:00 New York
    assert trade.orderStatus.status == "Cancelled"
    assert not trade.fills


async def test_a_bracket_child_watches_its_conditions_once_the_parent_filled(
    gw: SimGateway, ib: IB
) -> None:
    aapl = await _aapl(ib)
    parent = MarketOrder("BUY", 10, orderId=ib.client.getReqId(), transmit=False)
    child = LimitOrder(
        "SELL", 10, round(gw.price("AAPL") + 50, 2), parentId=parent.orderId,
        conditions=[TimeCondition(isMore=True, time=_at(gw, 60))],
    )  # fmt: skip
    parent_trade = ib.placeOrder(aapl, parent)
    child_trade = ib.placeOrder(aapl, child)
    await settle(ib)
    assert parent_trade.orderStatus.status == "Filled"
    assert child_trade.orderStatus.status == "PreSubmitted"
    await step(gw, ib, 60)
    assert child_trade.orderStatus.status == "Submitted"
