"""Adversarial review of the engine redesign (e914fe5..): behaviour changes and holes, each
shown through the real ib_async client and ibsim where it can be reached, on real objects
where it cannot. Each was found failing in review and fixed.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.clock import BrokerClock
from engine.domain import EngineState, Order, OrderStatus, OrderType, OrderUpdate, Side
from engine.events import Difference, DifferenceKind, EventBus, ReconcileEvent
from engine.fills import Fills
from engine.journal import Journal
from engine.journal_writer import JournalWriter
from engine.orders import OrderManager
from engine.portfolio import Portfolio
from engine.ports import BrokerOrder, BrokerSnapshot
from engine.reconciliation import Reconciler, Servers
from engine.recorder import Recorder
from engine.tasks import TaskOwner
from engine.trader import Trader
from tests.engine.conftest import make_settings, record_orders, running_engine

QUIET = "fast=50,slow=60"
REF = "tb-0123456789abcdef"


@pytest.fixture
def _strategy_out(monkeypatch) -> None:
    monkeypatch.setattr(Trader, "decide", lambda *_: None)


# --- the journal busy (another process holds its write lock) ---------------------------------


async def _resting_order(engine) -> Order:
    last = engine.portfolio.last_price["AAPL"]
    order = await engine.orders.submit("AAPL", Side.BUY, 3, "resting", OrderType.LIMIT,
                                       round(last * 0.8, 2))
    assert await engine.orders.wait_status(order.order_ref, {OrderStatus.SUBMITTED}, 10)
    return order


@pytest.mark.usefixtures("_strategy_out")
async def test_pause_takes_effect_while_the_journal_is_busy(gateway, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params=QUIET)
    async with running_engine(gateway, settings) as (engine, control):
        blocker = sqlite3.connect(settings.db_path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        pause = asyncio.ensure_future(control.pause("op", "busy disk"))
        try:
            await asyncio.wait({pause}, timeout=3.0)
            paused = engine.risk.state is EngineState.PAUSED
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
            await asyncio.wait_for(pause, 20)
        assert paused, "still trading 3 s after /pause"


@pytest.mark.usefixtures("_strategy_out")
async def test_cancel_all_cancels_while_the_journal_is_busy(gateway, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params=QUIET)
    async with running_engine(gateway, settings) as (engine, control):
        order = await _resting_order(engine)
        blocker = sqlite3.connect(settings.db_path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        cancel = asyncio.ensure_future(control.cancel_all("op"))
        try:
            await engine.orders.wait_done([order.order_ref], 5.0)
            cancelled = order.status is OrderStatus.CANCELLED
            at_gateway = len(gateway.open_orders)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
            await asyncio.wait_for(cancel, 20)
        assert cancelled and at_gateway == 0, "the resting order was not cancelled"


# --- sound: the hot path's write-ahead ---------------------------------------------------------


@pytest.mark.usefixtures("_strategy_out")
async def test_an_entrys_intent_is_on_disk_before_the_gateway_sees_it(
    gateway, tmp_path: Path
) -> None:
    """send_soon (inline commit, then placeOrder in the same callback): the row is committed
    when the gateway receives the order, and its PENDING follows it on disk."""
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params=QUIET)
    received = record_orders(gateway)
    seen_on_disk: list[bool] = []
    async with running_engine(gateway, settings) as (engine, _):
        reader = sqlite3.connect(settings.db_path, isolation_level=None)

        def check(request) -> None:
            row = reader.execute("SELECT status FROM orders WHERE order_ref = ?",
                                 (request.request.order_ref,)).fetchone()
            seen_on_disk.append(row is not None)

        gateway.hooks.order_received.connect(check)
        order = engine.orders.prepare("AAPL", Side.BUY, 2, "entry")
        sent = await asyncio.wait_for(engine.orders.send_soon(order), 10)
        assert sent is order and not engine.orders.sending
        assert await engine.orders.wait_done([order.order_ref], 10)
        await engine.writer.flush()
        row = reader.execute("SELECT status FROM orders WHERE order_ref = ?",
                             (order.order_ref,)).fetchone()
        reader.close()
        assert row == (OrderStatus.FILLED.value,)
    assert received == [order.order_ref] and seen_on_disk == [True]


@pytest.mark.usefixtures("_strategy_out")
async def test_an_intent_dropped_while_its_commit_waits_is_never_sent(
    gateway, tmp_path: Path
) -> None:
    """The thread path (a busy disk): the kill switch abandons the intent meanwhile; when the
    commit lands, `then` drops it rather than place it, and `sending` is left clean."""
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params=QUIET)
    received = record_orders(gateway)
    async with running_engine(gateway, settings) as (engine, _):
        blocker = sqlite3.connect(settings.db_path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            order = engine.orders.prepare("AAPL", Side.BUY, 2, "entry")
            sent = engine.orders.send_soon(order)
            assert not sent.done() and order.order_ref in engine.orders.sending
            engine.orders.abandon(order, "cancelled before it was sent")
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert await asyncio.wait_for(sent, 10) is order
        assert order.status is OrderStatus.CANCELLED
        assert not engine.orders.sending and not engine.orders.has_working("AAPL")
    assert received == []


@pytest.mark.usefixtures("_strategy_out")
async def test_a_pause_after_flatten_and_resume_outlives_a_restart(
    gateway, tmp_path: Path
) -> None:
    """State rows go through the writer now: flatten's pause (on the side), a resume (on
    the side), then /pause (durable), in that order on disk; a restart resumes PAUSED."""
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params=QUIET)
    journal = await Journal.open(settings.db_path)
    try:
        async with running_engine(gateway, settings, journal) as (engine, control):
            await control.flatten("op")
            await control.resume("op")
            await control.pause("op", "for the night")
        async with running_engine(gateway, settings, journal, ready=False) as (engine, _):
            assert engine.risk.state is EngineState.PAUSED
            assert engine.risk.pause_reason == "for the night"
    finally:
        await journal.close()


# --- OrderManager's index of working orders ------------------------------------------------


@pytest.fixture
def orders(recorder: Recorder) -> OrderManager:  # journal, writer, recorder: conftest.py
    return OrderManager(object(), recorder, BrokerClock())  # type: ignore[arg-type]


def _order(status: OrderStatus, filled: float = 0.0) -> Order:
    return Order(REF, "AAPL", Side.BUY, 10, status=status, filled=filled)


def test_a_replaced_order_object_never_unindexes_the_tracked_one(
    orders: OrderManager,
) -> None:
    old = _order(OrderStatus.SUBMITTED)
    orders.adopt(old)
    live = _order(OrderStatus.SUBMITTED)
    orders.adopt(live)  # the same ref, found again
    orders.transition(old, OrderStatus.CANCELLED)
    assert orders.has_working("AAPL"), "the live, working order fell out of the index"


def test_the_index_follows_every_status_change(orders: OrderManager) -> None:
    """Sound: prepare, transition, a revival and adopt_unfinished keep _working true."""
    order = orders.prepare("AAPL", Side.BUY, 1, "x")
    assert orders.working() == [order]
    orders.transition(order, OrderStatus.PENDING)
    orders.transition(order, OrderStatus.CANCELLED)
    assert orders.working() == []
    orders.transition(order, OrderStatus.SUBMITTED)  # the broker shows it alive
    assert orders.working() == [order]
    orders.transition(order, OrderStatus.FILLED, filled=1)
    assert orders.working() == [] and not orders.has_working("AAPL")
    assert not orders.transition(order, OrderStatus.UNKNOWN)  # refused, index unchanged
    assert orders.working() == []
    unfinished = Order("tb-feedfacefeedface", "MSFT", Side.SELL, 2, status=OrderStatus.INTENT)
    orders.adopt_unfinished(unfinished, "restart")
    assert unfinished.status is OrderStatus.UNKNOWN and orders.working() == [unfinished]


# --- reconciliation on real objects -------------------------------------------------------


class _Broker:
    """Only what Reconciler reads: a fixed snapshot, and the client id."""

    client_id = 1
    is_connected = True

    def __init__(self, snapshot: BrokerSnapshot) -> None:
        self._snapshot = snapshot

    async def snapshot(self) -> BrokerSnapshot:
        return self._snapshot


def _reconciler(broker: _Broker, journal: Journal, orders: OrderManager,
                recorder: Recorder) -> Reconciler:
    portfolio = Portfolio()
    fills = Fills(orders, portfolio, broker, recorder,  # type: ignore[arg-type]
                  traded={"AAPL"}, on_realized=lambda: None)
    tasks = TaskOwner("test", lambda *_: None)
    return Reconciler(broker, journal, orders, portfolio, fills,  # type: ignore[arg-type]
                      recorder, BrokerClock(), tasks, servers=lambda: Servers(False, 0.0))


async def test_reconciliation_never_lowers_what_is_filled(
    journal: Journal, orders: OrderManager, recorder: Recorder
) -> None:
    order = _order(OrderStatus.PARTIAL, filled=6)
    orders.adopt(order)
    found = BrokerOrder(REF, 7, 70, 1, "AAPL", Side.BUY, 10, 4, OrderStatus.SUBMITTED, "MKT",
                        None, None)
    broker = _Broker(BrokerSnapshot((found,), (), (), ()))
    await asyncio.wait_for(_reconciler(broker, journal, orders, recorder).reconcile(), 10)
    assert order.status is OrderStatus.SUBMITTED
    assert order.filled == 6


async def test_a_status_during_adoption_is_not_lost(
    journal: Journal, orders: OrderManager, recorder: Recorder
) -> None:
    found = BrokerOrder(REF, 7, 70, 1, "AAPL", Side.BUY, 10, 0, OrderStatus.SUBMITTED, "MKT",
                        None, None)
    broker = _Broker(BrokerSnapshot((found,), (), (), ()))
    reconciler = _reconciler(broker, journal, orders, recorder)
    write_durable = recorder.write_durable

    async def fill_arrives_meanwhile(statement):
        if statement[0].startswith("INSERT INTO orders"):
            orders.on_update(OrderUpdate(REF, OrderStatus.FILLED, 10, 0, 100.0,
                                         datetime.now(UTC), ib_order_id=7, perm_id=70),
                             "AAPL")
        return await write_durable(statement)

    recorder.write_durable = fill_arrives_meanwhile  # type: ignore[method-assign]
    await asyncio.wait_for(reconciler.reconcile(), 10)
    assert orders.orders[REF].status is OrderStatus.FILLED
    assert not orders.has_working("AAPL")


async def test_the_differences_are_returned_published_and_journaled_as_data(
    journal: Journal, writer: JournalWriter
) -> None:
    bus = EventBus()
    events = bus.subscribe(kinds=(ReconcileEvent,))
    recorder = Recorder(writer, bus, BrokerClock())
    orders = OrderManager(object(), recorder, BrokerClock())  # type: ignore[arg-type]
    found = BrokerOrder(REF, 7, 70, 1, "AAPL", Side.BUY, 10, 0, OrderStatus.SUBMITTED, "MKT",
                        None, None)
    reconciler = _reconciler(_Broker(BrokerSnapshot((found,), (), (), ())), journal, orders,
                             recorder)
    differences = await asyncio.wait_for(reconciler.reconcile(), 10)
    assert differences == [Difference(DifferenceKind.NOT_JOURNALED, REF, "AAPL")]
    event = events.get_nowait()
    assert (event.differences, event.adopted) == (tuple(differences), 1)
    await writer.flush()
    [row] = [r for r in await journal.recent_events(limit=10) if r.kind == "reconcile"]
    assert row.message == "reconciled: 1 order(s) adopted, 1 difference(s)"
    assert row.details == {"differences": [{
        "kind": "not_journaled", "order_ref": REF, "symbol": "AAPL", "status": None,
        "filled": None, "quantity": None, "client_id": None, "our_client_id": None, "count": 0,
    }]}
