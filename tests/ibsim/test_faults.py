"""Every fault, in-process."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Stock

from ibsim import SimGateway
from ibsim.faults import FaultInjector

from .conftest import connect, settle, step


async def _aapl(ib: IB) -> Stock:
    (c,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    return c


def _errors(ib: IB) -> list[tuple[int, int, str]]:
    seen: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, contract: seen.append((req_id, code, text))
    return seen


async def _until(clients: list[IB], predicate, timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` holds, re-checking whenever a client receives data."""
    changed = asyncio.Event()

    def poke(*_: object) -> None:
        changed.set()

    for c in clients:
        c.updateEvent += poke
        c.disconnectedEvent += poke
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                changed.clear()
                await changed.wait()
    finally:
        for c in clients:
            c.updateEvent -= poke
            c.disconnectedEvent -= poke


async def test_drop_every_connection(gw: SimGateway) -> None:
    a, b = await connect(gw, 1), await connect(gw, 2)
    gw.faults.drop_connections()
    await _until([a, b], lambda: not a.isConnected() and not b.isConnected())
    c = await connect(gw, 1)
    assert c.isConnected()
    c.disconnect()


async def test_refuse_connections_for_a_while(gw: SimGateway) -> None:
    gw.faults.refuse_connections(0.3)
    with pytest.raises(ConnectionRefusedError):
        await IB().connectAsync("127.0.0.1", gw.port, clientId=1, timeout=2)
    await asyncio.sleep(0.4)
    ib = await connect(gw, 1)
    assert ib.isConnected()
    ib.disconnect()


@pytest.mark.parametrize(("maintained", "code"), [(True, 1102), (False, 1101)])
async def test_connectivity_lost_then_restored(
    gw: SimGateway, ib: IB, maintained: bool, code: int
) -> None:
    errors = _errors(ib)
    aapl = await _aapl(ib)
    bars = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
    await settle(ib)
    gw.faults.connectivity_lost(0.2, data_maintained=maintained)
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 1))
    await step(gw, ib, 30)
    assert [c for _, c, _ in errors] == [1100]
    assert len(bars) == 0  # no data while IB is unreachable
    assert trade.orderStatus.status == "PendingSubmit"  # held, not lost
    await _until([ib], lambda: any(c == code for _, c, _ in errors))
    await settle(ib)
    assert trade.orderStatus.status == "Filled"
    await step(gw, ib, 30)
    # Data maintained: the stream resumes by itself. Data lost: it must be re-requested.
    assert (len(bars) == 6) is maintained


async def test_data_farm_flap(gw: SimGateway, ib: IB) -> None:
    errors = _errors(ib)
    gw.faults.data_farm_flap(0.1)
    await _until([ib], lambda: [c for _, c, _ in errors] == [2103, 2104])
    assert "usfarm" in errors[0][2]


async def test_reject_next_order(gw: SimGateway, ib: IB) -> None:
    errors = _errors(ib)
    aapl = await _aapl(ib)
    gw.faults.reject_next_order("Insufficient margin for this test")
    rejected = ib.placeOrder(aapl, MarketOrder("BUY", 1))
    accepted = ib.placeOrder(aapl, MarketOrder("BUY", 1))
    await settle(ib)
    assert rejected.orderStatus.status == "Cancelled"
    assert errors == [(rejected.order.orderId, 201,
                       "Order rejected - reason:Insufficient margin for this test")]  # fmt: skip
    assert accepted.orderStatus.status == "Filled"


async def test_pacing_violation_on_next_historical_request(gw: SimGateway, ib: IB) -> None:
    errors = _errors(ib)
    aapl = await _aapl(ib)
    gw.faults.pacing_violation_next()
    bars = await ib.reqHistoricalDataAsync(aapl, "", "1 D", "1 min", "TRADES", True)
    assert len(bars) == 0
    assert [(c, "Pacing violation" in t) for _, c, t in errors] == [(162, True)]
    assert len(await ib.reqHistoricalDataAsync(aapl, "", "1 D", "1 min", "TRADES", True)) > 0


async def test_delayed_order_acknowledgements(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    gw.faults.delay_order_acks(150)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    trade = ib.placeOrder(aapl, LimitOrder("BUY", 1, round(gw.price("AAPL") - 5, 2)))
    await settle(ib)
    assert trade.orderStatus.status == "PendingSubmit"
    await _until([ib], lambda: trade.orderStatus.status == "Submitted")
    assert loop.time() - t0 >= 0.15
    ib.cancelOrder(trade.order)
    await _until([ib], lambda: trade.orderStatus.status == "Cancelled")
    gw.faults.delay_order_acks(0)


async def test_soft_disconnect_stalls_one_symbol_silently(gw: SimGateway, ib: IB) -> None:
    errors = _errors(ib)
    aapl = await _aapl(ib)
    (msft,) = await ib.qualifyContractsAsync(Stock("MSFT", "SMART", "USD"))
    a = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
    m = ib.reqRealTimeBars(msft, 5, "TRADES", False)
    gw.faults.stall_market_data("AAPL")
    await step(gw, ib, 60)
    assert len(a) == 0 and len(m) == 12
    assert errors == []
    gw.faults.resume_market_data("AAPL")
    await step(gw, ib, 60)
    assert len(a) == 12


async def test_competing_session(gw: SimGateway, ib: IB) -> None:
    errors = _errors(ib)
    aapl = await _aapl(ib)
    bars = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
    await settle(ib)
    gw.faults.competing_session(0.2)
    await step(gw, ib, 30)
    assert [(r, c) for r, c, _ in errors] == [(bars.reqId, 10197)]
    assert len(bars) == 0
    await asyncio.sleep(0.3)
    await step(gw, ib, 30)
    assert len(bars) == 6


def test_the_gateway_keeps_every_fault_as_a_method_that_delegates() -> None:
    """Tests and benches outside ibsim call ``gateway.drop_connections()`` and the like."""
    faults = [
        name
        for name, fn in inspect.getmembers(FaultInjector, inspect.isfunction)
        if not name.startswith("_")
        and name not in ("close", "schedule", "port_settled", "wait_port_open")
    ]
    assert len(faults) == 14
    for name in faults:
        delegate = getattr(SimGateway, name)
        assert inspect.signature(delegate) == inspect.signature(getattr(FaultInjector, name))


async def test_a_gateway_fault_method_reaches_the_injector(gw: SimGateway) -> None:
    gw.delay_order_acks(150)
    assert gw.state.faults.ack_delay == 0.15
    gw.reject_next_order("no")
    assert gw.broker.reject_next == "no"
