"""The kill switch across an IB outage: an order the broker does not show is not proof it is dead.

Issue 8, item 1: +5 AAPL, −7 MSFT; IB reports 1100 (ibsim holds order requests without listing
them); /flatten sends two closes; the socket drops (or the bot restarts); the closes must not be
written off for want of a trace, and a second /flatten must not close again. When IB is back,
the held closes fill and the account is flat, not reversed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine import kill_switch as kill_switch_module
from engine.domain import ConnectionState, OrderStatus
from engine.events import ConnectionEvent, FillEvent
from engine.journal import Journal
from tests.engine.conftest import (
    NO_TRACE_GRACE,
    lose_ib,
    make_settings,
    next_event,
    open_positions,
    record_orders,
    running_engine,
)

QUIET = "fast=50,slow=60"  # the strategy places nothing during these tests


@pytest.mark.parametrize("interruption", ["drop", "restart"])
async def test_second_flatten_after_an_outage_never_closes_twice(
    gateway, tmp_path: Path, monkeypatch, interruption: str
) -> None:
    # Bounds the first flatten's wait on code that would wait for the held closes.
    monkeypatch.setattr(kill_switch_module, "FLATTEN_WAIT_SECONDS", 2.0)
    settings = make_settings(tmp_path, strategy_params=QUIET)
    received = record_orders(gateway)
    journal = await Journal.open(settings.db_path)
    try:
        async with running_engine(gateway, settings, journal) as (engine, control):
            await open_positions(engine)
            assert gateway.positions() == {"AAPL": 5, "MSFT": -7}
            events = control.subscribe()
            await lose_ib(gateway, events)
            first = await control.flatten("test")
            assert not first.flat
            assert {w.order.symbol for w in first.waiting_for_ib} == {"AAPL", "MSFT"}
            closes = [o for o in engine.orders.orders.values() if o.reason == "flatten by test"]
            assert len(closes) == 2
            if interruption == "drop":
                gateway.drop_connections()
                await next_event(events, ConnectionEvent,
                                 lambda e: e.state is ConnectionState.DISCONNECTED)
                await next_event(events, ConnectionEvent,
                                 lambda e: e.state is not ConnectionState.DISCONNECTED)
                await _second_flatten_waits(engine, control, gateway, closes, received)
        if interruption == "restart":
            async with running_engine(gateway, settings, journal) as (engine, control):
                await _second_flatten_waits(engine, control, gateway, closes, received)
    finally:
        await journal.close()
    assert gateway.positions() == {}, "the account must end flat, not reversed"


async def _second_flatten_waits(engine, control, gateway, closes, received) -> None:
    """Several no-trace grace periods pass; a second flatten sends nothing; IB comes back and
    the first flatten's closes fill."""
    refs = [o.order_ref for o in closes]
    for _ in range(4):
        await asyncio.sleep(NO_TRACE_GRACE)  # time is what the write-off rule is about
        if engine.broker.is_connected:
            await engine.reconcile()
    tracked = [engine.orders.orders[ref] for ref in refs]
    assert all(o.status is OrderStatus.UNKNOWN for o in tracked), [
        (o.symbol, o.status, o.message) for o in tracked
    ]
    sent_before = list(received)
    second = await control.flatten("test again")
    assert not second.flat
    assert {w.order.symbol for w in second.waiting_for_ib} == {"AAPL", "MSFT"}
    assert not second.closed
    assert received == sent_before, "a second close was sent"
    events = engine.bus.subscribe()
    gateway.restore_connectivity()
    assert await engine.orders.wait_done(refs, 10), [(o.symbol, o.status) for o in tracked]
    assert all(o.status is OrderStatus.FILLED for o in tracked)
    await next_event(events, FillEvent)
    await engine.wait_positions_settled(5)
    assert engine.orders.working() == []
    third = await control.flatten("test")
    assert third.flat and third.already_flat
