"""No exception vanishes (issue 8, item 4): a broker event handler or a background task that
raises is logged with its traceback, journaled, alerted (once per kind an hour), and the rest of
the event is still processed where that is safe. Through the real ib_async client and ibsim.

Before: eventkit handed a handler's exception to an error event nobody listened to; with
EQUITY_SNAPSHOT_MINUTES=inf the snapshot raised inside the bar handler before the signal was
handled, and the bot traded nothing and logged nothing.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

from engine.events import FillEvent, RiskEvent
from engine.journal_rows import event_stmt
from engine.journal_writer import ROUTINE_BATCH, JournalWriter
from engine.portfolio import Portfolio
from tests.engine.conftest import make_settings, next_event, running_engine


def _internal_errors(events: list[object]) -> list[RiskEvent]:
    return [e for e in events if isinstance(e, RiskEvent) and e.kind == "internal_error"]


async def test_a_failing_equity_snapshot_does_not_stop_trading(
    gateway, tmp_path: Path, caplog
) -> None:
    settings = make_settings(tmp_path, symbols="AAPL")
    async with running_engine(gateway, settings) as (engine, control):
        alerts = engine.bus.subscribe(kinds=(RiskEvent,))
        events = control.subscribe()
        # Past validation (which now refuses it): the value that made the snapshot raise.
        settings.equity_snapshot_minutes = math.inf
        fill = await next_event(events, FillEvent, timeout=20)
        assert fill.fill.symbol == "AAPL"
        # Many bars later, still one alert: the failure repeats on every bar.
        for _ in range(3):
            await next_event(events, FillEvent, timeout=20)
        seen = [alerts.get_nowait() for _ in range(alerts.pending())]
        await engine.writer.flush()
        rows = await engine.journal.recent_events(limit=500, levels=("error",))
    snapshot_rows = [r for r in rows if r.kind == "internal_error" and "equity snapshot" in
                     r.message]
    assert len(snapshot_rows) > 1, "journaled every time"
    assert "OverflowError" in snapshot_rows[0].message
    snapshot_alerts = [e for e in _internal_errors(seen) if "equity snapshot" in e.message]
    assert len(snapshot_alerts) == 1
    logged = [r for r in caplog.records if "equity snapshot failed" in r.getMessage()]
    assert logged and logged[0].exc_info is not None, "logged with its traceback"


async def test_a_failing_commission_handler_still_announces_the_fill(
    gateway, tmp_path: Path, caplog, monkeypatch
) -> None:
    settings = make_settings(tmp_path, symbols="AAPL")
    async with running_engine(gateway, settings) as (engine, control):
        def broken(*_: object) -> None:
            raise ValueError("a value nobody expected")

        # PnL accounting fails on every commission report.
        monkeypatch.setattr(Portfolio, "add_realized", broken)
        events = control.subscribe()
        fill = await next_event(events, FillEvent, timeout=20)
        alert = await next_event(events, RiskEvent, lambda e: e.kind == "internal_error", 5)
        assert "commission handler failed: ValueError: a value nobody expected" in alert.message
        await engine.writer.flush()
        assert await engine.journal.has_fill(fill.fill.exec_id)
        rows = await engine.journal.recent_events(limit=100, levels=("error",))
        assert any(r.kind == "internal_error" and "commission handler" in r.message
                   for r in rows)
    assert any("commission handler failed" in r.getMessage() and r.exc_info
               for r in caplog.records)


async def test_a_dying_background_task_is_alerted_and_restarted(
    gateway, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params="fast=50,slow=60")
    async with running_engine(gateway, settings) as (engine, control):
        events = control.subscribe()
        calls = 0
        ran_again = asyncio.Event()
        check_journal = engine._check_journal

        def broken() -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("watchdog bug")
            ran_again.set()
            check_journal()

        engine._check_journal = broken
        alert = await next_event(events, RiskEvent, lambda e: e.kind == "internal_error", 10)
        assert "engine:watchdog failed: RuntimeError: watchdog bug" in alert.message
        await asyncio.wait_for(ran_again.wait(), 10)  # KeptAlive started a fresh watchdog


async def test_broker_handlers_are_all_guarded(gateway, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params="fast=50,slow=60")
    async with running_engine(gateway, settings) as (engine, _):
        ib = engine.broker.ib
        for event in (ib.disconnectedEvent, ib.orderStatusEvent, ib.execDetailsEvent,
                      ib.commissionReportEvent, ib.errorEvent, ib.positionEvent,
                      ib.accountValueEvent):
            ours = [slot.func for slot in event._slots.slots
                    if slot.func.__module__ == "engine.broker"]
            assert ours and all(f.__name__ == "guarded" for f in ours), event.name()


async def test_a_dying_journal_writer_is_alerted_and_restarted(
    gateway, tmp_path: Path, monkeypatch
) -> None:
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params="fast=50,slow=60")
    async with running_engine(gateway, settings) as (engine, control):
        events = control.subscribe()
        apply, failures = JournalWriter._apply, []

        def bug_once(self, statements):
            if not failures:
                failures.append(len(statements))
                raise RuntimeError("writer bug")
            return apply(self, statements)

        monkeypatch.setattr(JournalWriter, "_apply", bug_once)
        for i in range(ROUTINE_BATCH + 1):
            engine.writer.write(event_stmt("info", "test", f"row {i}"))
        # The rows behind the failed batch are written once the writer is back.
        await asyncio.wait_for(engine.writer.flush(), 10)
        alert = await next_event(events, RiskEvent, lambda e: e.kind == "internal_error", 5)
        assert "journal writer failed: RuntimeError: writer bug" in alert.message
        rows = await engine.journal.recent_events(limit=100)
        assert f"row {ROUTINE_BATCH}" in {r.message for r in rows}
        assert failures == [ROUTINE_BATCH]
