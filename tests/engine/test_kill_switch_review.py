"""Holes an adversarial review found in the kill switch after issue 8's first fixes, each
through the real ib_async client and ibsim.

- a /flatten after a restart, before the first reconciliation, closed again what a held close
  from before the restart was already closing;
- a second account-scope command's global cancel cancelled the kill switch's held closes;
- an order of unknown outcome (ib_async forgot it at the drop) could not be cancelled at all;
- /cancelall said nothing about the kill switch's resting closes;
- a failure while setting up after a connect was neither journaled nor alerted.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import pytest

from engine import control as control_module
from engine import kill_switch as kill_switch_module
from engine.domain import ConnectionState, Order, OrderStatus, OrderType, Side
from engine.events import ConnectionEvent, RiskEvent
from engine.journal import Journal
from engine.journal_rows import insert_order_stmt
from engine.market_data import MarketData
from engine.reports import NotCancelledReason, NotClosedReason
from engine.trader import Trader
from tests.engine.conftest import (
    lose_ib,
    make_settings,
    next_event,
    open_positions,
    record_orders,
    running_engine,
)

QUIET = "fast=50,slow=60"
NIGHT = 11 * 3600  # from ibsim's 09:30 New York start to 20:30: no session until 04:00


@pytest.fixture(autouse=True)
def _short_waits(monkeypatch) -> None:
    monkeypatch.setattr(kill_switch_module, "FLATTEN_WAIT_SECONDS", 2.0)
    monkeypatch.setattr(kill_switch_module, "CANCEL_WAIT_SECONDS", 1.0)
    monkeypatch.setattr(Trader, "decide", lambda *_: None)  # the strategy stays out


async def test_flatten_right_after_a_restart_does_not_close_what_a_held_close_closes(
    gateway, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, strategy_params=QUIET)
    received = record_orders(gateway)
    journal = await Journal.open(settings.db_path)
    try:
        async with running_engine(gateway, settings, journal) as (engine, control):
            await open_positions(engine)
            await lose_ib(gateway, control.subscribe())
            await control.flatten("test")
        assert len(received) == 4  # two entries, two held closes
        async with running_engine(gateway, settings, journal, ready=False) as (engine, control):
            connected = asyncio.Event()
            gateway.hooks.client_connected.connect(lambda _: connected.set())
            await asyncio.wait_for(connected.wait(), 10)
            # Before the first reconciliation: the journal's closes already block their symbols.
            report = await control.flatten("operator after the restart")
            assert not report.flat and not report.closed
            assert {w.order.symbol for w in report.waiting_for_ib} == {"AAPL", "MSFT"}
            await asyncio.wait_for(engine.ready.wait(), 20)
            gateway.restore_connectivity()
            closes = [o for o in engine.orders.orders.values() if o.is_kill_switch]
            assert await engine.orders.wait_done([o.order_ref for o in closes], 10)
            await engine.wait_positions_settled(5)
    finally:
        await journal.close()
    assert len(received) == 4, "a second close was sent"
    assert gateway.positions() == {}


@pytest.mark.parametrize("second", ["flatten all", "cancelall all"])
async def test_a_second_account_command_leaves_the_held_closes_alone(
    gateway, tmp_path: Path, second: str
) -> None:
    settings = make_settings(tmp_path, strategy_params=QUIET)
    async with running_engine(gateway, settings) as (engine, control):
        await open_positions(engine)
        await gateway.advance(NIGHT)  # the closes will rest, so a global cancel would hit them
        await lose_ib(gateway, control.subscribe())
        await control.flatten("op", scope="account")
        closes = [o for o in engine.orders.orders.values() if o.is_kill_switch]
        assert len(closes) == 2
        if second == "flatten all":
            report = await control.flatten("op", scope="account")
            assert {w.order.symbol for w in report.waiting_for_ib} == {"AAPL", "MSFT"}
        else:
            report = await control.cancel_all("op", scope="account")
            assert sum(f.reason is NotCancelledReason.KILL_SWITCH_CLOSE for f in report.failed) == 2
            assert any(f.reason is NotCancelledReason.OTHER_PROGRAMS for f in report.failed)
        gateway.restore_connectivity()
        assert await engine.orders.wait_status(closes[0].order_ref, {OrderStatus.SUBMITTED}, 5)
        assert await engine.orders.wait_status(closes[1].order_ref, {OrderStatus.SUBMITTED}, 5)
        assert all(not o.status.is_done for o in closes)  # resting, not cancelled
        assert len(gateway.open_orders) == 2


async def test_an_order_of_unknown_outcome_is_cancelled_by_its_id(
    gateway, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params=QUIET)
    async with running_engine(gateway, settings) as (engine, control):
        events = control.subscribe()
        last = engine.portfolio.last_price["AAPL"]
        gateway.delay_order_acks(300)
        entry = await engine.orders.submit(
            "AAPL", Side.BUY, 10, "entry", OrderType.LIMIT, round(last * 0.8, 2)
        )
        await lose_ib(gateway, control.subscribe())
        gateway.delay_order_acks(0)
        gateway.drop_connections()  # ib_async forgets the order's Trade
        await next_event(events, ConnectionEvent,
                         lambda e: e.state is ConnectionState.DISCONNECTED)
        await next_event(events, ConnectionEvent, lambda e: e.state is ConnectionState.DEGRADED)
        await engine.reconcile()  # the connect's own, done: the order is not seen
        assert entry.status is OrderStatus.UNKNOWN
        report = await control.flatten("op")
        assert [w.order.symbol for w in report.waiting_for_ib] == ["AAPL"]
        gateway.restore_connectivity()  # the held entry is placed, then the held cancel
        assert await engine.orders.wait_done([entry.order_ref], 10)
        assert entry.status is OrderStatus.CANCELLED
    assert gateway.open_orders == [] and gateway.positions() == {}


async def test_cancelall_names_the_kill_switchs_resting_close(gateway, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params=QUIET)
    async with running_engine(gateway, settings) as (engine, control):
        await open_positions(engine, (("AAPL", Side.BUY, 5),))
        await gateway.advance(NIGHT)
        first = await control.flatten("op")
        assert not first.flat  # the close rests until the market takes it
        assert [n.reason for n in first.not_closed] == [NotClosedReason.CLOSE_WORKING]
        cancel = await control.cancel_all("op")
        assert any(f.reason is NotCancelledReason.KILL_SWITCH_CLOSE for f in cancel.failed), cancel
        second = await control.flatten("op")
        assert any(n.reason is NotClosedReason.EARLIER_CLOSE_WORKING
                   for n in second.not_closed), second
        assert len(gateway.open_orders) == 1  # one close, never two


async def test_a_failing_connect_set_up_is_alerted_and_backs_off(
    gateway, tmp_path: Path, monkeypatch
) -> None:
    attempts = 0

    async def broken(self, backfill):
        nonlocal attempts
        attempts += 1
        raise KeyError("a value nobody expected")

    monkeypatch.setattr(MarketData, "warm_up", broken)
    settings = make_settings(tmp_path, symbols="AAPL")
    async with running_engine(gateway, settings, ready=False) as (engine, _):
        events = engine.bus.subscribe(kinds=(RiskEvent,))
        alert = await next_event(events, RiskEvent, lambda e: e.kind == "internal_error", 10)
        assert "connect set-up failed: KeyError" in alert.message
        await asyncio.sleep(1.0)  # the backoff grows: a handful of attempts, not dozens
        assert attempts <= 6, attempts
        await engine.writer.flush()
        rows = await engine.journal.recent_events(limit=50, levels=("error",))
        assert any("connect set-up failed" in r.message for r in rows)


async def test_a_stale_journal_copy_never_revives_a_done_order(gateway, tmp_path: Path) -> None:
    """A reconnect right after a fill: the journal may still say PendingSubmit (the status
    is queued for the disk). Reconciliation must not take that copy over the order in memory,
    or the filled close would come back as 'unknown' and block its symbol."""
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params=QUIET)
    async with running_engine(gateway, settings) as (engine, control):
        await open_positions(engine, (("AAPL", Side.BUY, 5),))
        filled = next(iter(engine.orders.orders.values()))
        assert filled.status is OrderStatus.FILLED
        stale = replace(filled, status=OrderStatus.PENDING, filled=0.0)

        async def journal_behind() -> list:
            return [stale]

        engine.journal.open_orders = journal_behind
        snapshot = engine.broker.snapshot

        async def broker_forgot():  # as after a reconnect: today's trace not (yet) listed
            found = await snapshot()
            return replace(found, completed_orders=(), fills=())

        engine.broker.snapshot = broker_forgot
        await engine.reconcile()
        assert filled.status is OrderStatus.FILLED
        assert engine.orders.working() == []
        assert (await control.flatten("op")).closed  # AAPL is not blocked


async def test_who_asked_is_journaled_for_resume_and_cancelall(gateway, tmp_path: Path) -> None:
    """The journal says who resumed or cancelled, with what scope, and a refused /resume as
    refused; the state rows name who changed the state."""
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params=QUIET)
    async with running_engine(gateway, settings) as (engine, control):
        await control.pause("alice", "lunch")
        await control.resume("alice")
        await control.cancel_all("carol", scope="account")
        async with engine.kill_switch._lock:  # as while a flatten runs
            with pytest.raises(control_module.CommandRefused, match="flatten in progress"):
                await control.resume("bob")
        assert engine.risk.state.value == "RUNNING"
        await engine.tasks.wait_aside(5)  # the commands are journaled on the side
        await engine.writer.flush()
        rows = await engine.journal.recent_events(limit=50)
        assert await engine.journal.get_state("pause_reason") == ""
    commands = {(r.message, json.dumps(r.details, sort_keys=True)) for r in rows
                if r.kind == "command"}
    assert ("resume by alice", '{"by": "alice"}') in commands
    assert ("cancel_all by carol", '{"by": "carol", "scope": "account"}') in commands
    assert ("resume by bob", '{"by": "bob", "refused": "flatten in progress"}') in commands
    assert "RUNNING by alice: " in {r.message for r in rows if r.kind == "state"}


async def test_a_symbol_waiting_for_ib_does_not_stop_the_others_closing(
    gateway, tmp_path: Path
) -> None:
    """Orders of unknown outcome hold back their own symbol only, and the flatten waits for
    its cancels before it reads the positions (a fill racing a cancel must be seen)."""
    settings = make_settings(tmp_path, symbols="AAPL,MSFT,SPY", strategy_params=QUIET)
    async with running_engine(gateway, settings) as (engine, control):
        await open_positions(engine, (("AAPL", Side.BUY, 5), ("MSFT", Side.SELL, 7)))
        last = engine.portfolio.last_price["SPY"]
        resting = await engine.orders.submit(
            "SPY", Side.BUY, 1, "resting", OrderType.LIMIT, round(last * 0.8, 2)
        )
        assert await engine.orders.wait_status(resting.order_ref, {OrderStatus.SUBMITTED}, 10)
        unknown = engine.orders.prepare("AAPL", Side.SELL, 5, "sent before a drop")
        engine.orders.transition(unknown, OrderStatus.UNKNOWN)  # as after a drop with it in flight
        gateway.delay_order_acks(200)  # the cancel's answer takes a while
        report = await control.flatten("op")
        gateway.delay_order_acks(0)
        assert [w.order.symbol for w in report.waiting_for_ib] == ["AAPL"]
        assert [c.symbol for c in report.closed] == ["MSFT"]
        assert len(report.cancelled_orders) == 1 and resting.status is OrderStatus.CANCELLED
        assert not any(n.reason is NotCancelledReason.KILL_SWITCH_CLOSE
                       for n in report.not_cancelled)
        await engine.tasks.wait_aside(5)  # the pause is journaled on the side
        assert await engine.journal.get_state("pause_reason") == "flatten by op"


async def test_a_fill_not_yet_in_the_positions_holds_its_symbol_back(
    gateway, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, symbols="AAPL,MSFT", strategy_params=QUIET)
    async with running_engine(gateway, settings) as (engine, control):
        await open_positions(engine, (("AAPL", Side.BUY, 5), ("MSFT", Side.SELL, 7)))
        engine.fills.await_position("AAPL", 3)  # a fill the broker's position does not show yet
        report = await control.flatten("op")
        assert [c.symbol for c in report.closed] == ["MSFT"]
        assert [n.symbol for n in report.not_closed] == ["AAPL"] and not report.not_cancelled
        assert report.not_closed[0].reason is NotClosedReason.FILL_NOT_IN_POSITIONS


async def test_an_intent_left_by_the_last_run_is_of_unknown_outcome(
    gateway, tmp_path: Path
) -> None:
    """The last run journaled an intent and may have sent it before it died: it is neither
    sent again nor dropped as 'not sent' by a /flatten before the first reconciliation (which
    would leave it untracked if it is live at IB)."""
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params=QUIET)
    journal = await Journal.open(settings.db_path)
    try:
        intent = Order("tb-lastrun0000001", "AAPL", Side.BUY, 5, reason="entry")
        await journal.execute(insert_order_stmt(intent))
        connected = asyncio.Event()
        gateway.hooks.client_connected.connect(lambda _: connected.set())
        async with running_engine(gateway, settings, journal, ready=False) as (engine, control):
            loaded = engine.orders.orders[intent.order_ref]
            assert loaded.status is OrderStatus.UNKNOWN
            await asyncio.wait_for(connected.wait(), 10)
            report = await control.flatten("op")
            assert loaded.status is OrderStatus.UNKNOWN, loaded.message
            assert [w.order.symbol for w in report.waiting_for_ib] == ["AAPL"]
    finally:
        await journal.close()


async def test_cancelall_cancels_an_order_whose_trade_ib_async_thinks_done(
    gateway, tmp_path: Path
) -> None:
    """Seen once after gateway restarts: one /cancelall left a protective order working and a
    second press cancelled it. The engine has the order working; ib_async's Trade for it says
    done (a status lost with a connection): the cancel must still reach IB, by the order's id."""
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params=QUIET)
    async with running_engine(gateway, settings) as (engine, control):
        resting = await _resting(engine)
        trade = engine.broker._trade(resting.order_ref)
        trade.orderStatus.status = "Cancelled"  # ib_async's copy, stale; IB has it working
        report = await asyncio.wait_for(control.cancel_all("op"), 8)
        assert not report.failed, report
        assert resting.status is OrderStatus.CANCELLED
    assert gateway.open_orders == []


async def test_cancelall_asks_again_for_an_order_still_working(
    gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cancel that never reached IB (lost on the way): /cancelall asks once more within its
    wait, so one press is enough."""
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params=QUIET)
    async with running_engine(gateway, settings) as (engine, control):
        resting = await _resting(engine)
        send = type(engine.broker).cancel
        asked: list[str] = []

        def lose_the_first(broker, order_ref: str, ib_order_id: int | None = None) -> bool:
            asked.append(order_ref)
            return True if len(asked) == 1 else send(broker, order_ref, ib_order_id)

        monkeypatch.setattr(type(engine.broker), "cancel", lose_the_first)
        report = await asyncio.wait_for(control.cancel_all("op"), 12)
        assert not report.failed, report
        assert asked == [resting.order_ref] * 2
        assert resting.status is OrderStatus.CANCELLED
    assert gateway.open_orders == []


async def _resting(engine) -> Order:
    """A limit order 20% under the market, acknowledged at the broker: it rests."""
    last = engine.portfolio.last_price["AAPL"]
    order = await engine.orders.submit(
        "AAPL", Side.BUY, 10, "protective", OrderType.LIMIT, round(last * 0.8, 2)
    )
    assert await engine.orders.wait_status(order.order_ref, {OrderStatus.SUBMITTED}, 10)
    return order
