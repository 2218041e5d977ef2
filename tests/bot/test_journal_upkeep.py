"""The journal's retention while the bot runs (bot/journal_upkeep.py): a prune at start, then
one every period; a prune that fails is logged and tried again, the bot goes on."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.journal_upkeep import JournalUpkeep
from engine.journal import Journal
from engine.journal_maintenance import PruneResult
from engine.journal_rows import event_stmt

OLD = datetime.now(UTC) - timedelta(days=31)


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    opened = await Journal.open(tmp_path / "j.sqlite3")
    yield opened
    await opened.close()


async def test_a_prune_deletes_old_routine_rows_and_says_so(journal: Journal) -> None:
    await journal.execute(event_stmt("warning", "gap", "AAPL: 1 bar(s) missing", None, OLD))
    await journal.execute(event_stmt("info", "command", "pause by 1", None, OLD))
    upkeep = JournalUpkeep(journal, timedelta(days=30))
    result = await upkeep.prune_once()
    assert result is not None and result.events == (1,)
    events = await journal.recent_events()
    assert [(e.kind, e.details) for e in events] == [
        ("prune", {"events": 1, "outbox": 0, "batches": 1}),
        ("command", None),
    ]
    assert events[0].message == (
        "pruned 1 routine event(s) and 0 delivered alert(s) older than 30 day(s)"
    )
    assert (await upkeep.prune_once()) == PruneResult((), ())
    assert len(await journal.recent_events()) == 2  # nothing pruned, nothing said


async def test_it_prunes_at_start_and_then_every_period(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[timedelta] = []
    second = asyncio.Event()

    async def prune(retention: timedelta) -> PruneResult:
        calls.append(retention)
        if len(calls) == 2:
            second.set()
        return PruneResult((), ())

    monkeypatch.setattr(journal, "prune", prune)
    upkeep = JournalUpkeep(journal, timedelta(days=7), every=0.05)
    upkeep.start()
    try:
        await asyncio.wait_for(second.wait(), 5)
    finally:
        await upkeep.stop()
    assert calls[:2] == [timedelta(days=7)] * 2


async def test_a_failed_prune_is_logged_and_the_next_one_tried(
    journal: Journal, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    async def prune(retention: timedelta) -> PruneResult:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise sqlite3.OperationalError("database or disk is full")
        return PruneResult((), ())

    monkeypatch.setattr(journal, "prune", prune)
    upkeep = JournalUpkeep(journal, timedelta(days=7))
    assert await upkeep.prune_once() is None
    assert "journal prune failed (database or disk is full)" in caplog.text
    assert await upkeep.prune_once() == PruneResult((), ())
