"""The state file: the simulated server side survives a restart."""

from __future__ import annotations

import json

from ib_async import LimitOrder, MarketOrder, Stock

from ibsim import SimGateway

from .conftest import START, connect, settle


async def test_restart_with_state_file(tmp_path) -> None:
    state = tmp_path / "ibsim.json"
    async with SimGateway(speed=0, start=START, state_file=state) as gw:
        ib = await connect(gw, 1)
        (aapl,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        ib.placeOrder(aapl, MarketOrder("BUY", 25, orderRef="kept"))
        resting = ib.placeOrder(aapl, LimitOrder("BUY", 1, round(gw.price("AAPL") - 5, 2)))
        ib.placeOrder(aapl, LimitOrder("BUY", 1, 1.0, transmit=False))  # never reaches IB
        await settle(ib)
        await gw.advance(120)
        clock = gw.clock.now()
        cash = gw.account().cash
        next_id = gw.broker.next_order_id(1)
        ib.disconnect()
    saved = json.loads(state.read_text())
    assert saved["clock"] == clock and len(saved["orders"]) == 2
    async with SimGateway(speed=0, start=START, state_file=state) as gw:
        assert gw.clock.now() == clock
        assert gw.account().cash == cash
        ib = await connect(gw, 1)
        try:
            assert ib.client.getReqId() >= next_id
            assert [p.position for p in ib.positions()] == [25.0]
            (trade,) = ib.openTrades()
            assert trade.order.permId == resting.order.permId
            assert [f.execution.orderRef for f in ib.fills()] == ["kept"]
            new = ib.placeOrder(aapl, MarketOrder("SELL", 25))
            await settle(ib)
            assert new.order.permId > resting.order.permId
            assert new.orderStatus.status == "Filled"
            assert gw.positions() == {}
        finally:
            ib.disconnect()
