"""The kill switch's rules (engine/control.py `flatten`), end to end through ibsim.

Both scopes: a bot-scope /flatten closes the bot's symbols only and leaves what was placed by
hand; /flatten all closes and cancels everything. Both outcomes: "flat" only when every
position was closed; a symbol whose order is still working is not closed (that order may still
fill), and the report says why.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Stock, Trade

from engine import control as control_module
from engine import kill_switch as kill_switch_module
from engine.domain import EngineState, OrderStatus, OrderType, Side
from engine.engine import Engine
from engine.events import CommandEvent
from engine.reports import NotClosed, NotClosedReason
from ibsim import SimGateway
from ibsim.hooks import FillRecord, OrderReceived
from tests.engine.conftest import make_settings, next_event, running_engine

QUIET = {"strategy_params": "fast=50,slow=60"}  # the strategy stays out of the way
HAND_CLIENT_ID = 77


@asynccontextmanager
async def by_hand(gateway: SimGateway) -> AsyncIterator[IB]:
    """Another client on the same account: the user's own TWS, trading by hand."""
    ib = IB()
    await ib.connectAsync("127.0.0.1", gateway.port, clientId=HAND_CLIENT_ID, timeout=10)
    try:
        yield ib
    finally:
        ib.disconnect()


async def _hand_fill(gateway: SimGateway, ib: IB, symbol: str, side: str, quantity: float) -> None:
    filled = asyncio.ensure_future(gateway.hooks.fill.wait(
        lambda record: record.execution.client_id == HAND_CLIENT_ID, timeout=10
    ))
    ib.placeOrder(Stock(symbol, "SMART", "USD"), MarketOrder(side, quantity))
    await filled


async def _hand_resting(gateway: SimGateway, ib: IB, symbol: str) -> Trade:
    price = gateway.price(symbol)
    order = LimitOrder("BUY", 1, round(price * 0.8, 2))
    trade = ib.placeOrder(Stock(symbol, "SMART", "USD"), order)
    while trade.orderStatus.status != "Submitted":
        await asyncio.wait_for(trade.statusEvent, 10)
    return trade


def _held(gateway: SimGateway) -> dict[str, float]:
    return {symbol: qty for symbol, qty in gateway.positions().items() if qty != 0}


async def _bot_position(engine: Engine, symbol: str, side: Side, quantity: float) -> None:
    order = await engine.orders.submit(symbol, side, quantity, "test position")
    assert await engine.orders.wait_done([order.order_ref], 10)
    assert order.status is OrderStatus.FILLED


async def _positions_shown(engine: Engine, expected: dict[str, float]) -> None:
    """Wait until the engine's copy of the broker's positions shows `expected`."""
    async def shown() -> None:
        while True:
            current = {p.symbol: p.quantity for p in await engine.broker.fresh_positions()}
            if all(current.get(symbol, 0) == quantity for symbol, quantity in expected.items()):
                return
            await engine.wait_positions_settled(1)

    await asyncio.wait_for(shown(), 10)


async def test_bot_scope_closes_the_bots_symbols_and_leaves_the_rest(
    gateway: SimGateway, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, symbols="AAPL,MSFT", **QUIET)
    async with running_engine(gateway, settings) as (engine, control), by_hand(gateway) as ib:
        await _bot_position(engine, "AAPL", Side.BUY, 5)
        await _bot_position(engine, "MSFT", Side.SELL, 7)
        await _hand_fill(gateway, ib, "SPY", "BUY", 3)
        hand_order = await _hand_resting(gateway, ib, "SPY")
        await _positions_shown(engine, {"AAPL": 5, "MSFT": -7, "SPY": 3})

        report = await asyncio.wait_for(control.flatten("test"), 30)
        assert report.flat and report.not_closed == report.not_cancelled == (), report
        assert {(c.symbol, c.quantity) for c in report.closed} == {("AAPL", 5), ("MSFT", -7)}
        assert _held(gateway) == {"SPY": 3}
        # The order placed by hand is the user's business, not the bot's.
        assert [o.order_id for o in gateway.open_orders] == [hand_order.order.orderId]
        assert engine.risk.state is EngineState.PAUSED

        everything = await asyncio.wait_for(control.flatten("test", scope="account"), 30)
        assert everything.flat, everything
        assert [(c.symbol, c.quantity) for c in everything.closed] == [("SPY", 3)]
        assert _held(gateway) == {}
        assert gateway.open_orders == []


async def test_a_symbol_with_a_working_order_is_not_closed(
    gateway: SimGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cancel of the resting order will not be acknowledged in time: it stays working.
    monkeypatch.setattr(kill_switch_module, "CANCEL_WAIT_SECONDS", 0.3)
    monkeypatch.setattr(kill_switch_module, "FLATTEN_WAIT_SECONDS", 1.0)
    settings = make_settings(tmp_path, symbols="AAPL", **QUIET)
    sent: list[OrderReceived] = []
    async with running_engine(gateway, settings) as (engine, control):
        await _bot_position(engine, "AAPL", Side.BUY, 5)
        last = engine.portfolio.last_price["AAPL"]
        resting = await engine.orders.submit(
            "AAPL", Side.BUY, 1, "resting", OrderType.LIMIT, round(last * 0.8, 2)
        )
        assert await engine.orders.wait_status(resting.order_ref, {OrderStatus.SUBMITTED}, 10)
        await _positions_shown(engine, {"AAPL": 5})
        gateway.delay_order_acks(60_000)
        gateway.hooks.order_received.connect(sent.append)

        report = await asyncio.wait_for(control.flatten("test"), 30)
        assert not report.flat
        assert report.closed == ()
        assert any((n.symbol, n.quantity, n.reason) == ("AAPL", 5, NotClosedReason.ORDER_WORKING)
                   for n in report.not_closed), report
        assert any(n.order is not None and n.order.order_ref == resting.order_ref
                   for n in report.not_cancelled), report
        assert sent == []  # no closing order went out beside the working one
        gateway.delay_order_acks(0)


async def test_not_flat_when_a_closing_order_is_rejected(
    gateway: SimGateway, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, symbols="AAPL,MSFT", **QUIET)
    async with running_engine(gateway, settings) as (engine, control):
        await _bot_position(engine, "AAPL", Side.BUY, 5)
        await _positions_shown(engine, {"AAPL": 5})
        gateway.reject_next_order("no liquidity")
        report = await asyncio.wait_for(control.flatten("test"), 30)
        assert not report.flat and report.closed == ()
        assert len(report.not_closed) == 1 and not report.not_cancelled
        failed = report.not_closed[0]
        assert (failed.symbol, failed.quantity) == ("AAPL", 5)
        assert failed.reason is NotClosedReason.CLOSE_FAILED and "no liquidity" in failed.detail
        assert _held(gateway) == {"AAPL": 5}
        # Pressed again, it finishes the job and says so.
        again = await asyncio.wait_for(control.flatten("test"), 30)
        assert again.flat and not again.already_flat
        assert [(c.symbol, c.quantity) for c in again.closed] == [("AAPL", 5)]
        assert _held(gateway) == {}


async def test_closing_orders_are_sized_and_sided_from_the_positions(
    gateway: SimGateway, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, symbols="AAPL,MSFT", **QUIET)
    fills: list[FillRecord] = []
    sent: list[OrderReceived] = []
    said: list[str] = []

    async def progress(text: str) -> None:
        said.append(text)

    async with running_engine(gateway, settings) as (engine, control):
        events = control.subscribe()
        await _bot_position(engine, "AAPL", Side.BUY, 1)  # one share: a boundary of its own
        await _bot_position(engine, "MSFT", Side.SELL, 7)
        last = engine.portfolio.last_price["MSFT"]
        resting = await engine.orders.submit(
            "MSFT", Side.BUY, 1, "resting", OrderType.LIMIT, round(last * 0.8, 2)
        )
        assert await engine.orders.wait_status(resting.order_ref, {OrderStatus.SUBMITTED}, 10)
        await _positions_shown(engine, {"AAPL": 1, "MSFT": -7})
        gateway.hooks.fill.connect(fills.append)
        gateway.hooks.order_received.connect(sent.append)
        report = await asyncio.wait_for(control.flatten("test", progress=progress), 30)
        assert report.flat is True and report.scope == "bot"
        assert [o for o in report.cancelled_orders if o.order_ref == resting.order_ref]
        closing = sorted((f.execution.con_id, f.execution.side, f.execution.shares)
                         for f in fills)
        aapl, msft = gateway.spec("AAPL").con_id, gateway.spec("MSFT").con_id
        assert closing == sorted([(aapl, "SLD", 1), (msft, "BOT", 7)])
        # Closing orders go out whatever the hour: the kill switch works outside RTH too.
        assert [(r.request.action, r.request.outside_rth) for r in sent] in (
            [("SELL", True), ("BUY", True)], [("BUY", True), ("SELL", True)],
        )
        closed = {c.symbol: c for c in report.closed}
        assert closed["AAPL"].quantity == 1 and closed["MSFT"].quantity == -7
        assert all((c.avg_price or 0) > 0 for c in report.closed)  # the closing fill's price
        assert said[0] == "cancelled 1 order(s)"
        assert said[1] in ("closing AAPL 1, MSFT -7", "closing MSFT -7, AAPL 1")
        command = await next_event(events, CommandEvent)
        assert (command.command, command.by, command.args) == ("flatten", "test", {"scope": "bot"})
        assert _held(gateway) == {}
        already = await asyncio.wait_for(control.flatten("test"), 30)
        assert already.flat and already.already_flat and already.closed == ()


async def test_the_strategy_stays_out_while_the_kill_switch_runs(
    gateway: SimGateway, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, symbols="AAPL", **QUIET)
    async with running_engine(gateway, settings) as (engine, control):
        await _bot_position(engine, "AAPL", Side.BUY, 5)
        await _positions_shown(engine, {"AAPL": 5})
        seen: dict[str, object] = {}

        async def progress(text: str) -> None:
            # While it runs: no entries from the strategy, and only the switch's own orders.
            seen["flattening"] = engine.flattening
            seen["halt"] = engine.orders.halt_reason
            entry = await engine.orders.submit("AAPL", Side.BUY, 1, "entry")
            seen["entry"] = entry.status

        report = await asyncio.wait_for(control.flatten("test", progress=progress), 30)
        assert report.flat is True
        assert seen == {"flattening": True, "halt": "flatten by test in progress",
                        "entry": OrderStatus.CANCELLED}
        assert engine.flattening is False and engine.orders.halt_reason is None


async def test_flatten_when_disconnected_says_so_and_is_not_flat(
    gateway: SimGateway, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, symbols="AAPL", **QUIET)
    async with running_engine(gateway, settings) as (engine, control):
        await _bot_position(engine, "AAPL", Side.BUY, 5)
        gateway.refuse_connections(30)
        gateway.drop_connections()
        while engine.broker.is_connected:
            await asyncio.wait_for(engine.bus.subscribe().get(), 10)
        report = await asyncio.wait_for(control.flatten("test"), 30)
        assert report.flat is False and report.scope == "bot"
        assert report.not_closed == (NotClosed(None, None, NotClosedReason.NOT_CONNECTED),)
        assert report.not_cancelled == ()
        assert engine.risk.state is EngineState.PAUSED  # paused all the same


def test_an_unknown_scope_is_refused() -> None:
    with pytest.raises(ValueError, match="scope"):
        control_module._check_scope("everything")
    control_module._check_scope("bot")
    control_module._check_scope("account")
