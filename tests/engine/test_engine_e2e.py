"""The engine end to end: ib_async against ibsim over loopback, journal on disk."""

from __future__ import annotations

import asyncio
import math
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from engine.domain import Bar, ConnectionState, EngineState, OrderStatus, OrderType, Side
from engine.events import (
    ConnectionEvent,
    DataEvent,
    Difference,
    FillEvent,
    OrderEvent,
    RiskEvent,
)
from engine.journal import Journal
from engine.ports import LiveTradingRefused
from tests.engine.conftest import make_settings, next_event, running_engine, sim_gateway


async def test_crossover_order_fill_journal_and_position(gateway, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with running_engine(gateway, settings) as (engine, control):
        events = control.subscribe()
        fill_event = await next_event(events, FillEvent)
        fill = fill_event.fill
        assert fill.order_ref.startswith("tb-")
        assert fill.quantity == 10 and fill.side is Side.BUY
        assert fill.commission == pytest.approx(1.0)
        await engine.writer.flush()
        order = await engine.journal.order(fill.order_ref)
        assert order is not None and order.status is OrderStatus.FILLED
        assert order.reason.startswith("SMA2 crossed above SMA4")
        assert await engine.journal.has_fill(fill.exec_id)
        await engine.wait_positions_settled(5)
        assert engine.portfolio.position(fill.symbol) == 10
        positions = await control.positions()
        assert {p.symbol: p.quantity for p in positions.positions}[fill.symbol] == 10
        assert await engine.journal.equity_curve()  # an equity snapshot once trading began
        signals = await engine.journal._rows("SELECT symbol, target FROM signals")
        assert (fill.symbol, 10.0) in [tuple(row) for row in signals]


async def test_paused_blocks_entries_but_not_exits(gateway, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, symbols="AAPL")
    async with running_engine(gateway, settings) as (engine, control):
        events = control.subscribe()
        entry = await next_event(events, FillEvent, lambda e: e.fill.side is Side.BUY)
        await control.pause("test", "hold on")
        assert (await control.status()).state is EngineState.PAUSED
        exit_fill = await next_event(events, FillEvent, lambda e: e.fill.side is Side.SELL)
        assert exit_fill.fill.symbol == entry.fill.symbol
        refused = await next_event(
            events, RiskEvent, lambda e: e.kind == "refused" and "paused" in e.message
        )
        assert "AAPL" in refused.message
        await engine.wait_positions_settled(5)
        assert engine.portfolio.position("AAPL") == 0


async def test_flatten_closes_everything_and_is_harmless_twice(gateway, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, symbols="AAPL,MSFT,SPY", strategy_params="fast=50,slow=60")
    async with running_engine(gateway, settings) as (engine, control):
        for symbol, side in (("AAPL", Side.BUY), ("MSFT", Side.SELL), ("SPY", Side.BUY)):
            order = await engine.orders.submit(symbol, side, 5, "test position")
            assert await engine.orders.wait_done([order.order_ref], 10)
        last = engine.portfolio.last_price["AAPL"]
        resting = await engine.orders.submit(
            "AAPL", Side.BUY, 1, "resting", OrderType.LIMIT, round(last * 0.8, 2)
        )
        await engine.wait_positions_settled(5)
        assert resting.status is not OrderStatus.CANCELLED
        report = await control.flatten("test")
        assert report.flat, report
        assert {c.symbol for c in report.closed} == {"AAPL", "MSFT", "SPY"}
        assert len(report.cancelled_orders) == 1
        await engine.wait_positions_settled(5)
        assert all(q == 0 for q in gateway_positions(gateway).values())
        assert gateway_open_orders(gateway) == []
        again = await control.flatten("test")
        assert again.flat and again.already_flat
        assert (await control.status()).state is EngineState.PAUSED


async def test_daily_loss_breach_pauses(gateway, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, symbols="AAPL", max_daily_loss=0.5)
    async with running_engine(gateway, settings) as (engine, control):
        events = control.subscribe()
        paused = await next_event(events, RiskEvent, lambda e: e.kind == "paused")
        assert "daily loss" in paused.message
        assert engine.risk.state is EngineState.PAUSED
        await engine.writer.flush()
        assert await engine.journal.get_state("engine_state") == "PAUSED"


async def test_bad_bars_are_dropped_journaled_and_alerted(gateway, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params="fast=50,slow=60")
    async with running_engine(gateway, settings) as (engine, control):
        events = control.subscribe()
        state = engine.symbols["AAPL"]
        last = state.last_small_bar or state.last_bar
        assert last is not None
        later = last.time + timedelta(days=1)
        engine.on_realtime_bar(Bar("AAPL", later, math.nan, 1, 1, 1))
        engine.on_realtime_bar(Bar("AAPL", later, 10, 9, 11, 10))
        alert = await next_event(events, DataEvent, lambda e: e.kind == "bad_bar")
        assert "non-finite" in alert.message
        assert state.last_small_bar is None or state.last_small_bar.time < later
        await engine.writer.flush()
        logged = await engine.journal.recent_events(levels=("warning",))
        assert sum(1 for row in logged if row.kind == "bad_bar") == 2


async def test_rejected_order_is_journaled_alerted_and_engine_goes_on(
    gateway, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, symbols="AAPL")
    gateway.reject_next_order("simulated rejection")
    async with running_engine(gateway, settings) as (engine, control):
        events = control.subscribe()
        rejected = await next_event(events, OrderEvent, lambda e: e.kind == "rejected")
        assert "simulated rejection" in rejected.message
        await engine.writer.flush()
        stored = await engine.journal.order(rejected.order.order_ref)
        assert stored is not None and stored.status is OrderStatus.REJECTED
        await next_event(events, FillEvent)  # still trading


async def test_restart_adopts_open_orders_instead_of_resending(
    gateway, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params="fast=50,slow=60")
    journal = await Journal.open(settings.db_path)
    try:
        async with running_engine(gateway, settings, journal) as (engine, _):
            last = engine.portfolio.last_price["AAPL"]
            resting = await engine.orders.submit(
                "AAPL", Side.BUY, 3, "resting", OrderType.LIMIT, round(last * 0.8, 2)
            )
            assert await engine.orders.wait_status(
                resting.order_ref, {OrderStatus.SUBMITTED}, 10
            )
        placed_before = gateway_orders_received(gateway)
        async with running_engine(gateway, settings, journal) as (engine, _):
            working = engine.orders.working("AAPL")
            assert [o.order_ref for o in working] == [resting.order_ref]
            assert working[0].status is OrderStatus.SUBMITTED
        assert gateway_orders_received(gateway) == placed_before
    finally:
        await journal.close()


async def test_live_account_is_refused_without_live_mode(tmp_path: Path) -> None:
    async with sim_gateway(account="U7654321") as gateway:
        settings = make_settings(tmp_path)
        async with running_engine(gateway, settings, ready=False) as (engine, _):
            await engine.wait_stopped()
            assert isinstance(engine.fatal, LiveTradingRefused)
            assert engine.risk.state is EngineState.HALTED


# --- reading ibsim's side (adapted to its inspection API) -------------------------------------


def gateway_positions(gateway) -> dict[str, float]:
    return gateway.positions()


def gateway_open_orders(gateway) -> list:
    return gateway.open_orders


def gateway_orders_received(gateway) -> int:
    return len(gateway.orders)


async def test_modify_and_cancel_a_resting_order(gateway, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params="fast=50,slow=60")
    async with running_engine(gateway, settings) as (engine, control):
        last = engine.portfolio.last_price["AAPL"]
        order = await engine.orders.submit(
            "AAPL", Side.BUY, 4, "resting", OrderType.LIMIT, round(last * 0.8, 2)
        )
        assert await engine.orders.wait_status(order.order_ref, {OrderStatus.SUBMITTED}, 10)
        new_price = round(last * 0.7, 2)
        assert engine.orders.modify(order.order_ref, quantity=6, limit_price=new_price)
        sim_order = await _sim_order_matching(
            gateway, order.order_ref, lambda o: o.total_quantity == 6
        )
        assert sim_order.lmt_price == pytest.approx(new_price)
        report = await control.cancel_all("test")
        assert len(report.cancelled) == 1 and not report.failed
        assert order.status is OrderStatus.CANCELLED
        await engine.writer.flush()
        stored = await engine.journal.order(order.order_ref)
        assert stored is not None
        assert (stored.status, stored.quantity, stored.limit_price) == (
            OrderStatus.CANCELLED, 6, new_price
        )


async def test_reconnect_resubscribes_and_keeps_trading(gateway, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, symbols="AAPL")
    async with running_engine(gateway, settings) as (engine, control):
        events = control.subscribe()
        await next_event(events, FillEvent)
        gateway.drop_connections()
        lost = await next_event(events, ConnectionEvent,
                                lambda e: e.state is ConnectionState.DISCONNECTED)
        assert "lost" in lost.detail
        restored = await next_event(events, ConnectionEvent,
                                    lambda e: e.state is ConnectionState.CONNECTED)
        assert restored.downtime_seconds is not None
        await next_event(events, FillEvent)  # bars flow again and the strategy trades
        await engine.writer.flush()
        fills = await engine.journal.recent_fills(100)
        assert len({f.exec_id for f in fills}) == len(fills)


async def test_fill_while_disconnected_is_recovered(gateway, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params="fast=50,slow=60")
    async with running_engine(gateway, settings) as (engine, control):
        events = control.subscribe()
        # ibsim holds the order 300 ms before it executes: we are gone by then.
        gateway.delay_order_acks(300)
        received = asyncio.ensure_future(gateway.hooks.order_received.wait())
        order = await engine.orders.submit("AAPL", Side.BUY, 2, "test")
        await received
        gateway.drop_connections()
        gateway.delay_order_acks(0)
        await next_event(events, ConnectionEvent, lambda e: e.state is ConnectionState.CONNECTED)
        reached = await engine.orders.wait_status(order.order_ref, {OrderStatus.FILLED}, 10)
        assert reached, (order.status, order.message)
        await engine.writer.flush()
        assert [f.order_ref for f in await engine.journal.fills_for(order.order_ref)]
        stored = await engine.journal.order(order.order_ref)
        assert stored is not None and stored.status is OrderStatus.FILLED
        await engine.wait_positions_settled(5)
        assert engine.portfolio.position("AAPL") == 2
        assert len(gateway.orders) == 1  # and it was never sent again


async def _sim_order_matching(gateway, order_ref: str, predicate) -> object:
    """ibsim's view of an order once it matches `predicate` (orders change on receipt)."""
    for order in gateway.orders:
        if order.order_ref == order_ref and predicate(order):
            return order
    await gateway.hooks.order_received.wait(lambda r: r.request.order_ref == order_ref)
    return next(o for o in gateway.orders if o.order_ref == order_ref and predicate(o))


async def test_bracket_entry_and_strategy_exit_cancels_protection(
    gateway, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, symbols="AAPL", stop_loss_pct=5, take_profit_pct=5)
    async with running_engine(gateway, settings) as (engine, control):
        events = control.subscribe()
        entry = await next_event(events, FillEvent, lambda e: e.fill.side is Side.BUY)
        children = [o for o in engine.orders.orders.values() if o.parent_ref]
        assert {o.order_type for o in children} == {OrderType.LIMIT, OrderType.STOP}
        assert all(o.parent_ref == entry.fill.order_ref for o in children)
        price = entry.fill.price
        limit = next(o for o in children if o.order_type is OrderType.LIMIT)
        stop = next(o for o in children if o.order_type is OrderType.STOP)
        assert limit.limit_price == pytest.approx(price * 1.05, rel=0.01)
        assert stop.stop_price == pytest.approx(price * 0.95, rel=0.01)
        exit_fill = await next_event(
            events, FillEvent,
            lambda e: e.fill.side is Side.SELL and e.fill.order_ref not in {
                o.order_ref for o in children
            },
        )
        assert exit_fill.fill.quantity == 10
        await engine.wait_positions_settled(5)
        assert engine.portfolio.position("AAPL") == 0
        assert all(o.status.is_done for o in children)
        assert [o for o in gateway_open_orders(gateway) if o.order_ref in {
            c.order_ref for c in children}] == []


async def test_flatten_stops_an_order_whose_intent_is_still_being_written(
    gateway, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params="fast=50,slow=60")
    async with running_engine(gateway, settings) as (engine, control):
        gate = asyncio.Event()
        commit_then = engine.writer.commit_then

        def slow_disk(statement, then):  # the intent's fsync takes a while
            if statement[0].startswith("INSERT INTO orders") and not gate.is_set():
                waiting = asyncio.ensure_future(gate.wait())
                waiting.add_done_callback(lambda _: commit_then(statement, then))
                return
            commit_then(statement, then)

        engine.writer.commit_then = slow_disk
        entry = asyncio.ensure_future(engine.orders.submit("AAPL", Side.BUY, 10, "entry"))
        await asyncio.sleep(0)  # the entry is now waiting for its write
        report = await asyncio.wait_for(control.flatten("test"), 20)
        gate.set()  # the intent reaches the disk only after the kill switch
        order = await asyncio.wait_for(entry, 20)
        assert order.status is OrderStatus.CANCELLED
        assert report.flat
        assert gateway.orders == []  # nothing reached the broker
        assert engine.portfolio.position("AAPL") == 0


async def test_overlapping_reconciles_both_finish(gateway, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params="fast=50,slow=60")
    async with running_engine(gateway, settings) as (engine, _):
        first, second = await asyncio.wait_for(
            asyncio.gather(engine.reconcile(), engine.reconcile()), 20
        )
        assert first == second == []


async def test_pause_survives_a_restart(gateway, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params="fast=50,slow=60")
    journal = await Journal.open(settings.db_path)
    try:
        async with running_engine(gateway, settings, journal) as (_, control):
            await control.pause("alice", "earnings")
        async with running_engine(gateway, settings, journal) as (_, control):
            status = await control.status()
            assert status.state is EngineState.PAUSED
            assert status.pause_reason == "earnings"
            await control.resume("alice")
        async with running_engine(gateway, settings, journal) as (_, control):
            assert (await control.status()).state is EngineState.RUNNING
    finally:
        await journal.close()


async def test_kill_switch_fires_when_the_journal_cannot_be_written(
    gateway, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, symbols="AAPL,MSFT", strategy_params="fast=50,slow=60")
    async with running_engine(gateway, settings) as (engine, control):
        for symbol in ("AAPL", "MSFT"):
            order = await engine.orders.submit(symbol, Side.BUY, 3, "test position")
            assert await engine.orders.wait_done([order.order_ref], 10)
        await engine.wait_positions_settled(5)
        blocker = sqlite3.connect(settings.db_path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # the disk is "full": nobody else can write
        try:
            report = await asyncio.wait_for(control.flatten("test"), 40)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert report.flat, report
        assert all(q == 0 for q in gateway_positions(gateway).values())
        await engine.writer.flush()  # and the intents reach the journal once it can be written
        flatten_orders = [o for o in await engine.journal.recent_orders(10)
                          if o.reason == "flatten by test"]
        assert len(flatten_orders) == 2


async def test_flatten_before_reconciliation_still_cancels_the_bots_orders(
    gateway, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params="fast=50,slow=60")
    journal = await Journal.open(settings.db_path)
    try:
        async with running_engine(gateway, settings, journal) as (engine, _):
            last = engine.portfolio.last_price["AAPL"]
            stop = await engine.orders.submit(
                "AAPL", Side.SELL, 10, "protective", OrderType.STOP, None, round(last * 0.8, 2)
            )
            assert await engine.orders.wait_status(stop.order_ref, {OrderStatus.SUBMITTED}, 10)
        # Restarted, and a /flatten arrives before reconciliation has adopted that order.
        release, connected = asyncio.Event(), asyncio.Event()
        async with running_engine(gateway, settings, journal, ready=False) as (engine, control):
            reconcile = engine.reconciler.reconcile

            async def slow_reconcile() -> list[Difference]:
                connected.set()
                await release.wait()
                return await reconcile()

            engine.reconciler.reconcile = slow_reconcile  # type: ignore[method-assign]
            await asyncio.wait_for(connected.wait(), 10)
            report = await asyncio.wait_for(control.flatten("test"), 20)
            release.set()
            assert report.flat
            assert [o for o in gateway_open_orders(gateway) if o.order_ref == stop.order_ref] == []
    finally:
        await journal.close()
