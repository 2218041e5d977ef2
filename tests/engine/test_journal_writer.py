"""The journal writer: durable intents, order kept, nothing dropped when the disk is busy."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.domain import Fill, Order, Side
from engine.journal import Journal
from engine.journal_rows import event_stmt, fill_stmt, insert_order_stmt
from engine.journal_writer import JournalWriter


async def test_durable_intent_and_routine_rows(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = await Journal.open(path)
    writer = JournalWriter(path)
    await writer.start()
    try:
        for number in range(100):
            writer.write(event_stmt("info", "test", f"row {number}"))
        order = Order(order_ref="tb-1", symbol="AAPL", side=Side.BUY, quantity=1)
        assert await writer.write_durable(insert_order_stmt(order)) == 1
        assert await journal.order("tb-1") is not None  # committed when the await returns
        await writer.flush()
        rows = await journal.recent_events(limit=200)
        assert [row.message for row in reversed(rows)] == [f"row {n}" for n in range(100)]
    finally:
        await writer.stop()
        await journal.close()


async def test_a_busy_database_delays_rows_but_loses_none(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = await Journal.open(path)
    writer = JournalWriter(path, busy_timeout=0.01)
    await writer.start()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        fill = Fill("e1", "tb-1", 1, datetime(2026, 11, 20, tzinfo=UTC), "AAPL", Side.BUY, 1, 10)
        writer.write(fill_stmt(fill))
        flushed = asyncio.ensure_future(writer.flush())
        await asyncio.sleep(0.2)
        assert not flushed.done() and writer.failures > 0
        blocker.execute("COMMIT")
        await asyncio.wait_for(flushed, 10)
        assert await journal.has_fill("e1")
    finally:
        blocker.close()
        await writer.stop()
        await journal.close()


async def test_stop_gives_up_on_a_disk_that_cannot_be_written(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = await Journal.open(path)
    writer = JournalWriter(path, busy_timeout=0.01)
    await writer.start()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        order = Order(order_ref="tb-1", symbol="AAPL", side=Side.BUY, quantity=1)
        intent = asyncio.ensure_future(writer.write_durable(insert_order_stmt(order)))
        writer.write(event_stmt("info", "test", "never written"))
        await asyncio.wait_for(writer.stop(timeout=0.3), 5)  # returns: no hang at exit
        with pytest.raises(RuntimeError, match="stopped"):
            await asyncio.wait_for(intent, 5)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        await journal.close()


# --- an entry's intent: committed on the loop while the disk is fast ---------------------


def _intent(ref: str) -> tuple[str, tuple]:
    return insert_order_stmt(Order(order_ref=ref, symbol="AAPL", side=Side.BUY, quantity=1))


async def test_an_intent_is_committed_inline_before_commit_then_returns(
    journal: Journal, writer: JournalWriter
) -> None:
    told: list[object] = []
    writer.commit_then(_intent("tb-1"), told.append)
    assert told == [1]  # on disk, and told, before returning: no thread hop, no await
    assert await journal.order("tb-1") is not None


async def test_an_intent_waits_for_the_thread_when_another_writer_holds_the_database(
    journal: Journal, writer: JournalWriter
) -> None:
    blocker = sqlite3.connect(journal.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        told: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        writer.commit_then(_intent("tb-2"), told.set_result)
        assert not told.done()  # the loop did not wait for the lock
        await asyncio.sleep(0.1)
        assert not told.done()  # and nothing is said before it is on disk
        blocker.execute("COMMIT")
        assert await asyncio.wait_for(told, 10) == 1
        assert await journal.order("tb-2") is not None
    finally:
        blocker.close()


async def test_a_slow_disk_sends_intents_through_the_thread_until_it_is_fast_again(
    journal: Journal,
) -> None:
    # A limit no commit here exceeds, however loaded the machine: "fast" is certain.
    writer = JournalWriter(journal.path, inline_limit=60.0)
    await writer.start()
    try:
        await _slow_then_fast(writer)
    finally:
        await writer.stop()


async def _slow_then_fast(writer: JournalWriter) -> None:
    writer.inline_ok = False  # as after a commit that took longer than the limit
    told: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    writer.commit_then(_intent("tb-3"), told.set_result)
    assert not told.done()  # not on the loop
    assert await asyncio.wait_for(told, 10) == 1
    assert writer.inline_ok  # that commit was fast: the next intent goes inline again
    inline: list[object] = []
    writer.commit_then(_intent("tb-4"), inline.append)
    assert inline == [1]


async def test_an_intent_after_the_writer_stopped_is_refused(
    journal: Journal, writer: JournalWriter
) -> None:
    await writer.stop()
    told: list[object] = []
    writer.commit_then(_intent("tb-5"), told.append)
    assert len(told) == 1 and isinstance(told[0], RuntimeError)
    assert await journal.order("tb-5") is None
