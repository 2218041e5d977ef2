"""Months unattended (issue 10), memory: done orders and seen executions are kept only for a
while; the journal keeps them, and nothing is sent twice or counted twice because of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ib_async import CommissionReport, Execution, Stock, Trade
from ib_async import Fill as IBFill
from ib_async import Order as IBOrder
from ib_async import OrderStatus as IBOrderStatus

from engine import ib_memory
from engine.broker import IBBroker
from engine.clock import BrokerClock
from engine.domain import ConnectionState, EngineState, Order, OrderStatus, OrderType, Side
from engine.events import ConnectionEvent, DifferenceKind, FillEvent, ReconcileEvent
from engine.journal_rows import update_order_stmt
from engine.orders import OrderManager
from engine.portfolio import Portfolio
from engine.recorder import Recorder
from engine.retention import Expiring
from engine.trader import Trader
from tests.engine.conftest import (
    TWO_POSITIONS,
    make_settings,
    next_event,
    open_positions,
    running_engine,
)

QUIET = "fast=50,slow=60"  # the strategy places nothing during these tests
T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def strategy_out(monkeypatch) -> None:
    monkeypatch.setattr(Trader, "decide", lambda *_: None)


# --- the retention itself -------------------------------------------------------------------


def test_keys_expire_oldest_first_once_older_than_the_retention() -> None:
    kept: Expiring[str] = Expiring(timedelta(hours=2))
    kept.note("a", T0)
    kept.note("b", T0 + timedelta(hours=1))
    kept.note("a", T0 + timedelta(hours=1, minutes=30))  # keeps its first time
    assert kept.expire(T0 + timedelta(hours=1, minutes=59)) == []
    assert kept.expire(T0 + timedelta(hours=2)) == ["a"]
    assert "a" not in kept and "b" in kept
    assert kept.expire(T0 + timedelta(hours=3)) == ["b"]
    assert len(kept) == 0


def test_times_noted_before_the_clock_stepped_back_follow_it() -> None:
    """The broker's clock steps back once, from wall time to the broker's at its first sync:
    a key noted before must not hold back every later one."""
    kept: Expiring[str] = Expiring(timedelta(hours=2))
    kept.note("before sync", T0 + timedelta(days=300))
    kept.note("after", T0)
    assert kept.expire(T0 + timedelta(hours=2)) == ["before sync", "after"]


# --- OrderManager: done orders leave memory after the retention -----------------------------


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _manager(recorder: Recorder) -> tuple[OrderManager, FakeMonotonic]:
    monotonic = FakeMonotonic()
    clock = BrokerClock(monotonic=monotonic)
    clock.sync(T0)
    return OrderManager(object(), recorder, clock), monotonic  # type: ignore[arg-type]


def _adopted(orders: OrderManager, ref: str, status: OrderStatus) -> Order:
    order = Order(f"tb-{ref:0>16}", "AAPL", Side.BUY, 10, status=status)
    orders.adopt(order)
    return order


async def test_done_orders_are_dropped_from_memory_after_the_retention(
    recorder: Recorder,
) -> None:
    orders, monotonic = _manager(recorder)
    retention = orders._done.retention.total_seconds()
    filled = _adopted(orders, "1", OrderStatus.SUBMITTED)
    working = _adopted(orders, "2", OrderStatus.SUBMITTED)
    orders.transition(filled, OrderStatus.FILLED, filled=10)
    monotonic.now = retention - 1
    orders.transition(_adopted(orders, "3", OrderStatus.SUBMITTED), OrderStatus.CANCELLED)
    assert filled.order_ref in orders.orders, "done for less than the retention: kept"
    monotonic.now = retention
    orders.transition(_adopted(orders, "4", OrderStatus.SUBMITTED), OrderStatus.REJECTED)
    assert filled.order_ref not in orders.orders
    assert {o.order_ref for o in orders.orders.values()} == {
        working.order_ref, "tb-0000000000000003", "tb-0000000000000004"}
    monotonic.now = 10 * retention
    orders.transition(_adopted(orders, "5", OrderStatus.SUBMITTED), OrderStatus.FILLED)
    assert list(orders.orders) == [working.order_ref, "tb-0000000000000005"], (
        "a working order is never dropped")
    assert orders.working() == [working]


async def test_a_cancelled_order_that_comes_back_is_kept_while_it_works(
    recorder: Recorder,
) -> None:
    orders, monotonic = _manager(recorder)
    retention = orders._done.retention.total_seconds()
    order = _adopted(orders, "1", OrderStatus.SUBMITTED)
    orders.transition(order, OrderStatus.CANCELLED)  # inferred: it can come back
    monotonic.now = retention / 2
    assert orders.transition(order, OrderStatus.SUBMITTED)
    monotonic.now = 3 * retention
    orders.transition(_adopted(orders, "2", OrderStatus.SUBMITTED), OrderStatus.FILLED)
    assert orders.orders.get(order.order_ref) is order
    assert orders.working() == [order]


async def test_nothing_is_dropped_while_the_journal_is_failing(recorder: Recorder) -> None:
    """The journal may lack a done order's last status while it cannot be written."""
    orders, monotonic = _manager(recorder)
    order = _adopted(orders, "1", OrderStatus.SUBMITTED)
    orders.transition(order, OrderStatus.FILLED, filled=10)
    monotonic.now = 3 * orders._done.retention.total_seconds()
    recorder.writer.failures = 3
    orders.transition(_adopted(orders, "2", OrderStatus.SUBMITTED), OrderStatus.FILLED)
    assert order.order_ref in orders.orders
    recorder.writer.failures = 0
    orders.transition(_adopted(orders, "3", OrderStatus.SUBMITTED), OrderStatus.FILLED)
    assert order.order_ref not in orders.orders


# --- IBBroker: ib_async's Trades and Fills of done orders ------------------------------------


def _ib_trade(status: str, filled: float, executed: list[float]) -> Trade:
    contract = Stock("AAPL", "SMART", "USD")
    trade = Trade(contract, IBOrder(orderId=5, clientId=1, permId=50, totalQuantity=10,
                                    orderRef="tb-0000000000000005"),
                  IBOrderStatus(orderId=5, status=status, filled=filled), [], [])
    for i, shares in enumerate(executed):
        trade.fills.append(IBFill(contract, Execution(execId=f"e{i}", permId=50, shares=shares),
                                  CommissionReport(), T0))
    return trade


def _known_to_ib_async(broker: IBBroker, trade: Trade) -> None:
    wrapper = broker.ib.wrapper
    wrapper.trades[(1, 5)] = trade
    wrapper.permId2Trade[50] = trade
    for fill in trade.fills:
        wrapper.fills[fill.execution.execId] = fill
    broker._trades[trade.order.orderRef] = trade


async def test_ib_async_forgets_a_done_trade_once_its_executions_and_commissions_are_in(
    monkeypatch,
) -> None:
    monkeypatch.setattr(ib_memory, "DONE_TRADE_SECONDS", 0.0)
    broker = IBBroker("127.0.0.1", 4002, 1)
    wrapper = broker.ib.wrapper
    trade = _ib_trade("Filled", 10, [6])
    _known_to_ib_async(broker, trade)
    broker.done_trades.note(trade)
    assert wrapper.trades and wrapper.fills, "an execution still to come: kept"
    trade.fills.append(IBFill(trade.contract, Execution(execId="e1", permId=50, shares=4),
                              CommissionReport(), T0))
    wrapper.fills["e1"] = trade.fills[-1]
    broker.done_trades.forget_due()
    assert wrapper.trades, "commission reports still to come: kept (they need the trade)"
    for fill in trade.fills:
        fill.commissionReport.execId = fill.execution.execId
    broker.done_trades.forget_due()
    assert not wrapper.trades and not wrapper.permId2Trade and not wrapper.fills
    assert not broker._trades


async def test_ib_async_keeps_inactive_and_working_trades(monkeypatch) -> None:
    monkeypatch.setattr(ib_memory, "DONE_TRADE_SECONDS", 0.0)
    broker = IBBroker("127.0.0.1", 4002, 1)
    for status in ("Inactive", "Submitted"):
        trade = _ib_trade(status, 0, [])
        _known_to_ib_async(broker, trade)
        broker.done_trades.note(trade)
        assert broker.ib.wrapper.trades[(1, 5)] is trade


async def test_ib_async_forgets_requested_executions_of_no_trade_it_knows() -> None:
    """reqExecutions (reconciliation) leaves the day's executions in ib_async's memory; those
    of trades it no longer knows can come to nothing more."""
    broker = IBBroker("127.0.0.1", 4002, 1)
    wrapper = broker.ib.wrapper
    trade = _ib_trade("Submitted", 4, [4])
    _known_to_ib_async(broker, trade)
    orphan = IBFill(trade.contract, Execution(execId="old", permId=49, shares=3),
                    CommissionReport(), T0)
    wrapper.fills["old"] = orphan
    broker.done_trades.forget_orphan_fills([orphan, *trade.fills])
    assert list(wrapper.fills) == ["e0"]


# --- end to end on ibsim: the journal stands in for memory -----------------------------------


def _forget_done(engine) -> None:
    """Done orders leave memory now, as if the retention's hours had passed."""
    kept = engine.orders._done.retention
    engine.orders._done.retention = timedelta(0)
    engine.orders._forget_done(engine.clock.now())
    engine.orders._done.retention = kept


def _forget_exec_ids(engine) -> None:
    """Exec ids leave memory as soon as they are noted (as if the trading day were over)."""
    engine.orders._seen_exec_ids.retention = timedelta(0)
    engine.fills._counted.retention = timedelta(0)


async def _reconnect(gateway, control) -> list:
    """Drop the socket; the reconnect's reconciliation runs; its differences."""
    events = control.subscribe(maxsize=10_000)
    gateway.drop_connections()
    await next_event(events, ConnectionEvent, lambda e: e.state is ConnectionState.CONNECTED, 20)
    return [e for e in _drain(events) if isinstance(e, ReconcileEvent)]


def _drain(events) -> list:
    return [events.get_nowait() for _ in range(events.pending())]


async def test_executions_resent_after_a_reconnect_are_not_counted_again_once_forgotten(
    gateway, tmp_path: Path, monkeypatch
) -> None:
    """IB re-sends the day's executions after a reconnect (reqExecutions): with the orders and
    the exec ids gone from memory (the engine's and ib_async's), the journal (fills keyed by
    exec id) still dedupes them, and reconciliation knows the orders from the journal:
    nothing unexplained, no pause."""
    monkeypatch.setattr(ib_memory, "DONE_TRADE_SECONDS", 0.0)
    settings = make_settings(tmp_path, symbols="AAPL,MSFT", strategy_params=QUIET)
    async with running_engine(gateway, settings) as (engine, control):
        _forget_exec_ids(engine)
        counted = _count_realized(engine, monkeypatch)
        await _open_and_count(engine, control, TWO_POSITIONS)
        _forget_done(engine)
        engine.broker.done_trades.forget_due()
        wrapper = engine.broker.ib.wrapper
        assert not wrapper.trades and not wrapper.permId2Trade and not wrapper.fills
        refs = await _fill_refs(engine)
        assert len(refs) == 2
        assert not any(ref in engine.orders.orders for ref in refs), "forgotten"
        assert len(engine.orders._seen_exec_ids) <= 1 and len(engine.fills._counted) <= 1
        assert len(counted) == 2
        fills_before = len(await engine.journal.fills())

        reconciled = await _reconnect(gateway, control)
        await engine.tasks.wait_aside(5)
        await engine.writer.flush()
        assert len(counted) == 2, "counted once"
        assert len(await engine.journal.fills()) == fills_before
        kinds = {d.kind for event in reconciled for d in event.differences}
        assert not kinds & {DifferenceKind.NOT_JOURNALED, DifferenceKind.UNKNOWN_ORDER_EXECUTION,
                            DifferenceKind.FILLS_RECOVERED}, kinds
        assert await engine.position_audit.check() == []
        assert engine.risk.state is EngineState.RUNNING
        for ref in refs:
            journaled = await engine.journal.order(ref)
            assert journaled is not None and journaled.status is OrderStatus.FILLED


async def test_a_live_duplicate_of_a_forgotten_orders_execution_is_not_counted(
    gateway, tmp_path: Path, monkeypatch
) -> None:
    """The order is gone from memory, its exec id is not (kept for the trading day)."""
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params=QUIET)
    async with running_engine(gateway, settings) as (engine, control):
        counted = _count_realized(engine, monkeypatch)
        await _open_and_count(engine, control, (("AAPL", Side.BUY, 5), ("AAPL", Side.SELL, 5)))
        _forget_done(engine)
        first = (await engine.journal.fills())[0]
        assert first.order_ref not in engine.orders.orders
        assert len(counted) == 2
        engine.on_fill(first)
        engine.on_commission(first.exec_id, 1.0, 100.0)
        await engine.writer.flush()
        assert len(counted) == 2
        assert not engine.fills.awaiting_position("AAPL")


async def test_a_written_off_order_forgotten_then_shown_alive_is_revived_from_the_journal(
    gateway, tmp_path: Path
) -> None:
    """A cancel inferred for want of a trace can be wrong: when the broker shows the order
    working after it left memory, reconciliation takes it back from the journal."""
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params=QUIET)
    async with running_engine(gateway, settings) as (engine, _):
        price = gateway.price("AAPL")
        resting = await engine.orders.submit("AAPL", Side.BUY, 1, "test resting",
                                             OrderType.LIMIT, limit_price=round(price * 0.5, 2))
        assert await engine.orders.wait_status(resting.order_ref, {OrderStatus.SUBMITTED}, 10)
        # As reconciliation writes one off (no trace for a whole grace period).
        engine.orders.transition(resting, OrderStatus.CANCELLED,
                                 message="no trace at the broker; not working")
        await engine.recorder.write_durable(update_order_stmt(resting.order_ref,
                                                              OrderStatus.CANCELLED))
        await engine.writer.flush()
        _forget_done(engine)
        assert resting.order_ref not in engine.orders.orders

        await engine.reconcile()
        revived = engine.orders.orders.get(resting.order_ref)
        assert revived is not None and revived.status is OrderStatus.SUBMITTED
        assert [o.order_ref for o in engine.orders.working("AAPL")] == [resting.order_ref]
        await engine.writer.flush()
        journaled = await engine.journal.order(resting.order_ref)
        assert journaled is not None and journaled.status is OrderStatus.SUBMITTED


def _count_realized(engine, monkeypatch) -> list[str]:
    """The symbols of every fill counted in today's PnL and commissions (today's figures
    themselves start again when the trading day changes, which may happen mid-test)."""
    counted: list[str] = []
    add_realized = Portfolio.add_realized

    def counting(portfolio: Portfolio, symbol: str, realized_pnl: float | None,
                 commission: float) -> None:
        if portfolio is engine.portfolio:
            counted.append(symbol)
        add_realized(portfolio, symbol, realized_pnl, commission)

    monkeypatch.setattr(Portfolio, "add_realized", counting)
    return counted


async def _open_and_count(engine, control, legs) -> None:
    """Open the positions and wait until each fill's commission is in today's figures."""
    fills = control.subscribe(maxsize=10_000)
    await open_positions(engine, legs)
    for _ in legs:
        await next_event(fills, FillEvent, lambda e: e.fill.commission is not None, 10)
    await engine.writer.flush()


async def _fill_refs(engine) -> list[str]:
    return list(dict.fromkeys(f.order_ref for f in await engine.journal.fills()))
