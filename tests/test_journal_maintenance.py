"""The journal's upkeep (engine/journal_maintenance.py): what retention prunes and what it keeps
forever, pruning in short batches that leave room for order intents, consistent copies while
the bot writes, and a copy before every schema upgrade."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.domain import Fill, Order, OrderStatus, OrderUpdate, Side, Signal
from engine.errors import ConfigurationError
from engine.journal import Journal
from engine.journal_maintenance import (
    ROUTINE_EVENT_KINDS,
    backup_database,
    migration_backup_path,
)
from engine.journal_rows import (
    MIGRATIONS,
    SCHEMA_VERSION,
    equity_stmt,
    event_stmt,
    fill_stmt,
    insert_order_stmt,
    iso,
    order_event_stmt,
    signal_stmt,
    state_stmt,
)

NOW = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
RETENTION = timedelta(days=90)
OLD = NOW - RETENTION - timedelta(days=1)
RECENT = NOW - RETENTION + timedelta(days=1)

# Every kind the bot journals today that must outlive the retention, and one it may add later.
KEPT_KINDS = (
    "command", "state", "order_state", "reconcile", "risk", "internal_error", "fatal", "config",
    "stranger", "stale_command", "chat_moved", "telegram_delivery", "a_kind_added_later",
)  # fmt: skip


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    opened = await Journal.open(tmp_path / "j.sqlite3")
    yield opened
    await opened.close()


def _fill(exec_id: str, at: datetime) -> Fill:
    return Fill(exec_id=exec_id, order_ref="tb-1", perm_id=7, time=at, symbol="AAPL",
                side=Side.BUY, quantity=10, price=100.0)  # fmt: skip


async def _event(journal: Journal, kind: str, at: datetime, level: str = "warning",
                 details: dict[str, object] | None = None) -> None:  # fmt: skip
    await journal.execute(event_stmt(level, kind, f"{kind} at {at}", details, at))


async def _count(journal: Journal, sql: str) -> int:
    async with journal._db.execute(sql) as cursor:
        row = await cursor.fetchone()
    return int(row[0])


async def _delivered(journal: Journal, payload: str, at: datetime | None) -> None:
    outbox_id = await journal.outbox_add("telegram", payload)
    if at is not None:
        await journal._db.execute(
            "UPDATE outbox SET created_at = ?, delivered_at = ? WHERE id = ?",
            (iso(at), iso(at), outbox_id),
        )


async def test_old_routine_events_and_delivered_alerts_go_everything_else_stays(
    journal: Journal,
) -> None:
    for kind in sorted(ROUTINE_EVENT_KINDS):
        await _event(journal, kind, OLD)  # pruned
        await _event(journal, kind, OLD, level="info")  # pruned
        await _event(journal, kind, OLD, level="error")  # kept: an error
        await _event(journal, kind, RECENT)  # kept: recent
    await _event(journal, "ib_error", OLD, details={"code": 202, "order_ref": "tb-1"})  # kept
    await _event(journal, "ib_error", OLD, details={"code": 2104, "order_ref": None})  # pruned
    for kind in KEPT_KINDS:
        await _event(journal, kind, OLD, level="info")
    order = Order(order_ref="tb-1", symbol="AAPL", side=Side.BUY, quantity=10, created_at=OLD)
    await journal.execute(insert_order_stmt(order))
    await journal.execute(order_event_stmt(
        OrderUpdate("tb-1", OrderStatus.FILLED, 10, 0, 100.0, OLD)
    ))  # fmt: skip
    await journal.execute(fill_stmt(_fill("e1", OLD)))
    await journal.execute(signal_stmt(Signal("AAPL", OLD, 10, "cross")))
    await journal.execute(equity_stmt(OLD, 1e5, 0.0, 0.0))
    await journal.execute(state_stmt("engine_state", "RUNNING"))
    await _delivered(journal, "old, delivered", OLD)  # pruned
    await _delivered(journal, "recent, delivered", RECENT)
    await _delivered(journal, "never delivered", None)
    await journal._db.execute(
        "UPDATE outbox SET created_at = ? WHERE delivered_at IS NULL", (iso(OLD),)
    )

    result = await journal.prune(RETENTION, NOW, pause=0)

    routine = len(ROUTINE_EVENT_KINDS)
    assert (sum(result.events), sum(result.outbox)) == (2 * routine + 1, 1)
    kept = [(e.kind, e.level) for e in await journal.recent_events(limit=1000)]
    assert sorted(kept) == sorted(
        [(kind, "error") for kind in ROUTINE_EVENT_KINDS]
        + [(kind, "warning") for kind in ROUTINE_EVENT_KINDS]
        + [("ib_error", "warning")]
        + [(kind, "info") for kind in KEPT_KINDS]
    )
    kept_ib_error = [e for e in await journal.recent_events(limit=1000, levels=("warning",))
                     if e.kind == "ib_error" and e.at == OLD]  # fmt: skip
    assert [e.details for e in kept_ib_error] == [{"code": 202, "order_ref": "tb-1"}]
    for table in ("orders", "order_events", "fills", "signals", "equity", "state"):
        assert await _count(journal, f"SELECT count(*) FROM {table}") == 1, table
    assert await journal.outbox_pending("telegram") == [(3, "never delivered")]
    assert await _count(journal, "SELECT count(*) FROM outbox") == 2
    assert (await journal.prune(RETENTION, NOW, pause=0)).rows == 0


async def test_a_prune_over_many_rows_deletes_in_batches(journal: Journal) -> None:
    rows = []
    for number in range(2500):
        at = OLD - timedelta(minutes=number)
        rows.append(event_stmt("warning", "gap", "gap", None, at))
        if number % 10 == 0:  # kept rows among them are skipped, not deleted
            rows.append(event_stmt("info", "command", "pause by 1", None, at))
    await journal._db.executemany(
        rows[0][0], [params for _, params in rows]
    )
    await journal._db.executemany(
        "INSERT INTO outbox (channel, created_at, payload, delivered_at) VALUES (?,?,?,?)",
        [("telegram", iso(OLD), "x", iso(OLD))] * 1200,
    )
    deletes: list[str] = []
    await journal._db.set_trace_callback(
        lambda sql: deletes.append(sql) if sql.startswith("DELETE") else None
    )

    result = await journal.prune(RETENTION, NOW, batch=1000, pause=0)

    assert result.events == (1000, 1000, 500)
    assert result.outbox == (1000, 200)
    assert len(deletes) == 5  # one statement, one transaction, per batch
    assert await _count(journal, "SELECT count(*) FROM events") == 250
    assert await _count(journal, "SELECT count(*) FROM outbox") == 0


async def test_order_intents_get_the_database_between_batches(journal: Journal) -> None:
    """The intents' connection never waits for a lock (busy_timeout 0): while a large prune
    runs, it still commits, between the batches."""
    await journal._db.executemany(
        event_stmt("warning", "gap", "gap", None, OLD)[0],
        [event_stmt("warning", "gap", "gap", None, OLD - timedelta(seconds=n))[1]
         for n in range(10_000)],
    )  # fmt: skip
    committed = 0
    done = threading.Event()

    def intents() -> None:
        nonlocal committed
        db = sqlite3.connect(journal.path, isolation_level=None, timeout=0)
        while not done.is_set():
            try:
                db.execute("BEGIN IMMEDIATE")
                db.execute(*state_stmt("intent", str(committed)))
                db.execute("COMMIT")
                committed += 1
            except sqlite3.OperationalError:
                if db.in_transaction:
                    db.execute("ROLLBACK")
            time.sleep(0.001)
        db.close()

    thread = threading.Thread(target=intents, daemon=True)
    thread.start()
    try:
        result = await journal.prune(RETENTION, NOW, batch=250, pause=0.01)
    finally:
        done.set()
        await asyncio.to_thread(thread.join, 5)
    assert len(result.events) == 40
    assert committed >= 10


# --- copies ----------------------------------------------------------------------------


async def test_a_backup_while_another_connection_writes_is_a_consistent_journal(
    journal: Journal, tmp_path: Path
) -> None:
    stop = threading.Event()
    busy = threading.Event()  # the writer is well under way
    written = 0

    def write_fills() -> None:
        nonlocal written
        db = sqlite3.connect(journal.path, isolation_level=None, timeout=5)
        while not stop.is_set():
            db.execute("BEGIN IMMEDIATE")  # a fill and its event: together or not at all
            db.execute(*fill_stmt(_fill(f"e{written}", NOW)))
            db.execute(*event_stmt("info", "fill", f"e{written}", None, NOW))
            db.execute("COMMIT")
            written += 1
            if written == 50:
                busy.set()
        db.close()

    writer = threading.Thread(target=write_fills, daemon=True)
    writer.start()
    try:
        assert await asyncio.to_thread(busy.wait, 10)
        target = tmp_path / "copy.sqlite3"
        await asyncio.to_thread(backup_database, journal.path, target)
    finally:
        stop.set()
        await asyncio.to_thread(writer.join, 5)

    assert not (tmp_path / "copy.sqlite3-wal").exists()
    copy = await Journal.open(target)
    try:
        assert await copy.schema_version() == SCHEMA_VERSION
        fills = await _count(copy, "SELECT count(*) FROM fills")
        assert 50 <= fills <= written
        assert await _count(copy, "SELECT count(*) FROM events") == fills
        async with copy._db.execute("PRAGMA integrity_check") as cursor:
            assert (await cursor.fetchone())[0] == "ok"
    finally:
        await copy.close()
    assert [name for name in os.listdir(tmp_path) if name.endswith("partial")] == []


async def test_a_backup_never_overwrites(journal: Journal, tmp_path: Path) -> None:
    target = tmp_path / "taken.sqlite3"
    target.write_text("mine")
    with pytest.raises(FileExistsError):
        backup_database(journal.path, target)
    assert target.read_text() == "mine"


def _version_1_journal(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(MIGRATIONS[0] + "\nPRAGMA user_version = 1;")
        db.execute(*fill_stmt(_fill("e-old", OLD)))
    db.close()


async def test_a_schema_upgrade_leaves_a_copy_of_the_journal_before_it(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    _version_1_journal(path)
    upgraded = await Journal.open(path)
    await upgraded.close()
    copy = migration_backup_path(path, SCHEMA_VERSION)
    assert copy == tmp_path / f"old.sqlite3.before-v{SCHEMA_VERSION}.sqlite3"
    with sqlite3.connect(copy) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1
        assert db.execute("SELECT exec_id FROM fills").fetchall() == [("e-old",)]
    db.close()
    before = copy.stat().st_mtime_ns
    again = await Journal.open(path)  # current now: no second copy
    await again.close()
    assert copy.stat().st_mtime_ns == before
    assert [name for name in os.listdir(tmp_path) if "before" in name] == [copy.name]


async def test_a_new_journal_needs_no_copy(tmp_path: Path) -> None:
    journal = await Journal.open(tmp_path / "new.sqlite3")
    await journal.close()
    assert [name for name in os.listdir(tmp_path) if "before" in name] == []


async def test_no_upgrade_without_its_copy(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    _version_1_journal(path)
    migration_backup_path(path, SCHEMA_VERSION).mkdir()  # where the copy would go
    with pytest.raises(ConfigurationError, match=r"^DB_PATH: cannot copy the journal to "):
        await Journal.open(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    db.close()
