"""Order handling rules (engine/orders.py), end to end: the real ib_async client against ibsim.

The intent is on disk at the moment ibsim sees the order; a status after the final one changes
nothing; only the broker revives a cancelled order; each status change is one order_events row;
a fill is counted once; nothing leaves while the kill switch holds or the socket is down.
Late or repeated broker answers, which ibsim does not produce on demand, enter through the
engine's broker-listener entry points, exactly where the ib_async adapter delivers them.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from engine.domain import ConnectionState, Order, OrderStatus, OrderType, OrderUpdate, Side
from engine.engine import Engine
from engine.events import ConnectionEvent, FillEvent, OrderEvent
from ibsim import SimGateway
from ibsim.hooks import OrderReceived
from tests.engine.conftest import make_settings, next_event, record_orders, running_engine

QUIET = {"strategy_params": "fast=50,slow=60", "symbols": "AAPL"}  # no signal for a long while


def _journaled_status(db_path: Path, order_ref: str) -> str | None:
    """The order's row as another reader of the database sees it: only committed rows."""
    with sqlite3.connect(db_path) as db:
        row = db.execute("SELECT status FROM orders WHERE order_ref = ?", (order_ref,)).fetchone()
    db.close()
    return row[0] if row else None


async def _order_events(engine: Engine, order_ref: str) -> list[tuple[str, float]]:
    await engine.writer.flush()
    rows = await engine.journal._rows(
        "SELECT status, filled FROM order_events WHERE order_ref = ? ORDER BY id", (order_ref,)
    )
    return [(row[0], row[1]) for row in rows]


async def _filled_market_order(engine: Engine, quantity: float = 3) -> Order:
    order = await engine.orders.submit("AAPL", Side.BUY, quantity, "test")
    assert await engine.orders.wait_done([order.order_ref], 10)
    assert order.status is OrderStatus.FILLED
    return order


async def _resting_limit(engine: Engine) -> Order:
    last = engine.portfolio.last_price["AAPL"]
    order = await engine.orders.submit(
        "AAPL", Side.BUY, 1, "resting", OrderType.LIMIT, round(last * 0.95, 2)
    )
    assert await engine.orders.wait_status(order.order_ref, {OrderStatus.SUBMITTED}, 10)
    return order


def _update(order: Order, status: OrderStatus, filled: float, message: str = "") -> OrderUpdate:
    return OrderUpdate(order.order_ref, status, filled, order.quantity - filled, 0.0,
                       datetime.now(UTC), message, order.ib_order_id, order.perm_id)


async def test_the_intent_is_on_disk_when_the_order_reaches_the_gateway(
    gateway: SimGateway, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, **QUIET)
    seen: dict[str, str | None] = {}

    def on_order(received: OrderReceived) -> None:
        ref = received.request.order_ref
        seen[ref] = _journaled_status(settings.db_path, ref)

    gateway.hooks.order_received.connect(on_order)
    async with running_engine(gateway, settings) as (engine, _):
        entry = await engine.orders.submit("AAPL", Side.BUY, 2, "test")
        closing = await engine.orders.submit("AAPL", Side.SELL, 2, "test", kill_switch=True)
        assert await engine.orders.wait_done([entry.order_ref, closing.order_ref], 10)
    # Journaled (as an intent, or already updated as sent by then): never missing.
    assert set(seen) == {entry.order_ref, closing.order_ref}
    assert all(status in ("Intent", "PendingSubmit") for status in seen.values()), seen


async def test_the_order_reaching_the_gateway_is_the_one_journaled(
    gateway: SimGateway, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, **QUIET, outside_rth=True)
    async with running_engine(gateway, settings) as (engine, _):
        received = asyncio.ensure_future(gateway.hooks.order_received.wait())
        last = engine.portfolio.last_price["AAPL"]
        order = await engine.orders.submit(
            "AAPL", Side.SELL, 4, "test", OrderType.LIMIT, round(last * 1.05, 2),
            outside_rth=True,
        )
        request = (await received).request
        assert (request.order_ref, request.action, request.total_quantity) == (
            order.order_ref, "SELL", 4,
        )
        assert request.order_type == "LMT" and request.lmt_price == order.limit_price
        assert request.outside_rth is True
        await engine.writer.flush()
        stored = await engine.journal.order(order.order_ref)
        assert stored is not None and stored.ib_order_id == request.order_id
        assert (stored.side, stored.quantity, stored.limit_price) == (
            Side.SELL, 4, order.limit_price,
        )


async def test_a_status_after_filled_changes_nothing(gateway: SimGateway, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, **QUIET)
    async with running_engine(gateway, settings) as (engine, _):
        order = await _filled_market_order(engine)
        events_before = await _order_events(engine, order.order_ref)
        assert events_before[-1] == ("Filled", 3)
        for late in (OrderStatus.SUBMITTED, OrderStatus.CANCELLED, OrderStatus.PENDING,
                     OrderStatus.UNKNOWN, OrderStatus.FILLED):
            engine.on_order_update(_update(order, late, 0 if late is not OrderStatus.FILLED
                                           else order.quantity), "AAPL")
            assert order.status is OrderStatus.FILLED, late
        assert order.filled == 3
        assert await _order_events(engine, order.order_ref) == events_before
        assert _journaled_status(settings.db_path, order.order_ref) == "Filled"
        assert not engine.orders.has_working("AAPL")


async def test_a_rejected_order_stays_rejected(gateway: SimGateway, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, **QUIET)
    gateway.reject_next_order("no")
    async with running_engine(gateway, settings) as (engine, control):
        events = control.subscribe()
        order = await engine.orders.submit("AAPL", Side.BUY, 1, "test")
        rejected = await next_event(events, OrderEvent, lambda e: e.kind == "rejected")
        assert rejected.order is order and order.status is OrderStatus.REJECTED
        engine.on_order_update(_update(order, OrderStatus.SUBMITTED, 0), "AAPL")
        assert order.status is OrderStatus.REJECTED
        await engine.writer.flush()
        assert _journaled_status(settings.db_path, order.order_ref) == "Rejected"


async def test_only_the_broker_revives_a_cancelled_order(
    gateway: SimGateway, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, **QUIET)
    async with running_engine(gateway, settings) as (engine, control):
        events = control.subscribe()
        order = await _resting_limit(engine)
        assert engine.orders.cancel(order.order_ref)
        cancelled = await next_event(events, OrderEvent, lambda e: e.kind == "cancelled")
        assert cancelled.order is order and order.status is OrderStatus.CANCELLED
        # Repeats and guesses do not bring it back...
        for status in (OrderStatus.CANCELLED, OrderStatus.PENDING, OrderStatus.UNKNOWN):
            engine.on_order_update(_update(order, status, 0), "AAPL")
            assert order.status is OrderStatus.CANCELLED, status
        assert not engine.orders.has_working("AAPL")
        # ...the broker saying it is alive does (a cancel inferred from an error can be wrong).
        engine.on_order_update(_update(order, OrderStatus.SUBMITTED, 0), "AAPL")
        assert order.status is OrderStatus.SUBMITTED
        assert engine.orders.has_working("AAPL")
        engine.on_order_update(_update(order, OrderStatus.CANCELLED, 0), "AAPL")
        # A fill reported after a cancel is a fill.
        engine.on_order_update(_update(order, OrderStatus.CANCELLED, 1), "AAPL")
        assert order.status is OrderStatus.CANCELLED and order.filled == 1
        events_seen = await _order_events(engine, order.order_ref)
        # The fill reported in a repeated Cancelled is journaled as a row of its own.
        assert events_seen[-4:] == [
            ("Cancelled", 0), ("Submitted", 0), ("Cancelled", 0), ("Cancelled", 1)
        ]


async def test_each_status_change_is_one_order_events_row(
    gateway: SimGateway, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, **QUIET)
    async with running_engine(gateway, settings) as (engine, _):
        order = await _resting_limit(engine)
        before = await _order_events(engine, order.order_ref)
        assert before and before[-1] == ("Submitted", 0)
        engine.on_order_update(_update(order, OrderStatus.SUBMITTED, 0), "AAPL")  # a repeat
        engine.on_order_update(_update(order, OrderStatus.PARTIAL, 0.25), "AAPL")
        engine.on_order_update(_update(order, OrderStatus.PARTIAL, 0.5), "AAPL")  # more filled
        after = await _order_events(engine, order.order_ref)
        assert after == [*before, ("PartiallyFilled", 0.25), ("PartiallyFilled", 0.5)]
        assert _journaled_status(settings.db_path, order.order_ref) == "PartiallyFilled"
        assert order.filled == 0.5
        # A stale status with less filled never lowers what is known to be filled.
        engine.on_order_update(_update(order, OrderStatus.PARTIAL, 0.25), "AAPL")
        assert order.filled == 0.5
        engine.orders.cancel(order.order_ref)


async def test_a_duplicate_execution_is_ignored(gateway: SimGateway, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, **QUIET)
    async with running_engine(gateway, settings) as (engine, control):
        events = control.subscribe()
        order = await _filled_market_order(engine)
        fill = (await next_event(events, FillEvent, lambda e: e.final)).fill
        assert fill.order_ref == order.order_ref
        await engine.wait_positions_settled(5)
        assert engine.portfolio.position("AAPL") == 3 and not engine.awaiting_position("AAPL")
        # IB sends an execution again (after a reconnect, or to a second request).
        assert engine.orders.on_fill(fill) is False
        engine.on_fill(replace(fill, commission=None, realized_pnl=None))
        assert not engine.awaiting_position("AAPL")  # not taken for a new, unseen fill
        await engine.writer.flush()
        assert [f.exec_id for f in await engine.journal.fills_for(order.order_ref)] == [
            fill.exec_id
        ]
        assert engine.orders.on_fill(replace(fill, exec_id=fill.exec_id + ".x")) is True


async def test_nothing_leaves_while_the_kill_switch_holds_but_its_own_orders(
    gateway: SimGateway, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, **QUIET)
    received = record_orders(gateway)
    async with running_engine(gateway, settings) as (engine, _):
        engine.orders.halt_reason = "flatten by test in progress"
        blocked = await engine.orders.submit("AAPL", Side.BUY, 1, "entry")
        assert blocked.status is OrderStatus.CANCELLED
        assert "flatten by test" in blocked.message
        own = await engine.orders.submit("AAPL", Side.BUY, 1, "close", kill_switch=True)
        assert await engine.orders.wait_done([own.order_ref], 10)
        engine.orders.halt_reason = None
        await engine.writer.flush()
        assert _journaled_status(settings.db_path, blocked.order_ref) == "Cancelled"
    assert blocked.order_ref not in received and own.order_ref in received


async def test_an_order_prepared_then_abandoned_is_not_sent(
    gateway: SimGateway, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, **QUIET)
    received = record_orders(gateway)
    async with running_engine(gateway, settings) as (engine, _):
        order = engine.orders.prepare("AAPL", Side.BUY, 1, "entry")
        assert engine.orders.has_working("AAPL")  # counts as working from the moment it exists
        engine.orders.abandon(order, "changed my mind")
        assert order.status is OrderStatus.CANCELLED
        assert order.message == "not sent: changed my mind"
        await engine.orders.send(order)
        assert order.status is OrderStatus.CANCELLED and not engine.orders.has_working("AAPL")
        # Abandoning is for orders not sent: a working order is not touched by it.
        resting = await _resting_limit(engine)
        engine.orders.abandon(resting, "too late")
        assert resting.status is OrderStatus.SUBMITTED
        engine.orders.cancel(resting.order_ref)
    assert order.order_ref not in received


async def test_an_order_sent_while_disconnected_is_known_not_sent(
    gateway: SimGateway, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, **QUIET)
    async with running_engine(gateway, settings) as (engine, control):
        events = control.subscribe()
        gateway.refuse_connections(30)
        gateway.drop_connections()
        await next_event(events, ConnectionEvent,
                         lambda e: e.state is ConnectionState.DISCONNECTED)
        order = await engine.orders.submit("AAPL", Side.BUY, 1, "entry")
        assert order.status is OrderStatus.CANCELLED and order.message.startswith("not sent")
        rejected = await next_event(events, OrderEvent, lambda e: e.order is order)
        assert rejected.kind == "rejected"
        assert not engine.orders.has_working("AAPL")
        await engine.writer.flush()
        assert _journaled_status(settings.db_path, order.order_ref) == "Cancelled"


async def test_working_and_has_working(gateway: SimGateway, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, **{**QUIET, "symbols": "AAPL,MSFT"})
    async with running_engine(gateway, settings) as (engine, _):
        resting = await _resting_limit(engine)
        assert engine.orders.has_working("AAPL") and not engine.orders.has_working("MSFT")
        assert engine.orders.working("AAPL") == [resting]
        assert engine.orders.working("MSFT") == []
        assert resting in engine.orders.working()
        engine.orders.cancel(resting.order_ref)
        assert await engine.orders.wait_done([resting.order_ref], 10)
        assert not engine.orders.has_working("AAPL") and engine.orders.working() == []
        # wait_done and wait_status time out (False) rather than hang.
        other = await _resting_limit(engine)
        assert not await engine.orders.wait_done([other.order_ref], 0.05)
        assert not await engine.orders.wait_status(other.order_ref, {OrderStatus.FILLED}, 0.05)
        assert await engine.orders.wait_status(other.order_ref, {OrderStatus.SUBMITTED}, 0.05)
        # A modify of a done order is refused; of a working one, journaled.
        assert engine.orders.modify(other.order_ref, limit_price=other.limit_price - 0.01)
        engine.orders.cancel(other.order_ref)
        assert await engine.orders.wait_done([other.order_ref], 10)
        assert not engine.orders.modify(other.order_ref, quantity=5)
        assert not engine.orders.modify("tb-unknown", quantity=5)


async def test_outside_rth_setting_reaches_the_strategys_orders(
    gateway: SimGateway, tmp_path: Path
) -> None:
    for outside_rth in (True, False):
        settings = make_settings(tmp_path / str(outside_rth), symbols="AAPL",
                                 outside_rth=outside_rth)
        received = asyncio.ensure_future(gateway.hooks.order_received.wait(
            lambda r: r.request.order_ref.startswith("tb-"), timeout=20
        ))
        async with running_engine(gateway, settings):
            request = (await received).request
        assert request.outside_rth is outside_rth


async def test_modifying_a_stop_moves_it_at_the_broker_in_memory_and_in_the_journal(
    gateway: SimGateway, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, **QUIET)
    async with running_engine(gateway, settings) as (engine, _):
        last = engine.portfolio.last_price["AAPL"]
        stop = await engine.orders.submit(
            "AAPL", Side.SELL, 3, "protective", OrderType.STOP, None, round(last * 0.8, 2)
        )
        assert await engine.orders.wait_status(stop.order_ref, {OrderStatus.SUBMITTED}, 10)
        moved = round(last * 0.7, 2)
        assert engine.orders.modify(stop.order_ref, stop_price=moved)
        received = await gateway.hooks.order_received.wait(
            lambda r: r.request.order_ref == stop.order_ref and r.request.aux_price == moved
        )
        assert received.request.total_quantity == 3  # only the stop moved
        assert (stop.quantity, stop.limit_price, stop.stop_price) == (3, None, moved)
        await engine.writer.flush()
        stored = await engine.journal.order(stop.order_ref)
        assert stored is not None and (stored.quantity, stored.stop_price) == (3, moved)
        assert not engine.orders.modify("tb-unknown", stop_price=moved)


async def test_a_brackets_children_reach_the_broker_as_one_oca_group_under_the_entry(
    gateway: SimGateway, tmp_path: Path
) -> None:
    """The stop-loss and the take-profit must cancel each other at IB (one OCA group) and hang
    on the entry: without it, both could fill and leave a reversed position."""
    received: list = []
    gateway.hooks.order_received.connect(received.append)
    settings = make_settings(tmp_path, symbols="AAPL", stop_loss_pct=5, take_profit_pct=5)
    async with running_engine(gateway, settings) as (engine, control):
        events = control.subscribe()
        entry = await next_event(events, FillEvent, lambda e: e.fill.side is Side.BUY)
        children = [o for o in engine.orders.orders.values()
                    if o.parent_ref == entry.fill.order_ref]
        assert len(children) == 2
    by_ref = {r.request.order_ref: r for r in received}
    parent = by_ref[entry.fill.order_ref]
    placed = [by_ref[o.order_ref].request for o in children]
    assert {p.oca_group for p in placed} == {f"oca-{entry.fill.order_ref}"}
    assert {p.parent_id for p in placed} == {parent.order_id}
    assert not parent.request.transmit and [p.transmit for p in placed].count(True) == 1
