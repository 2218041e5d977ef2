"""The journal: WAL, migrations from an older schema, idempotent fills, order round trip."""

from __future__ import annotations

import random
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.domain import Fill, Order, OrderStatus, OrderUpdate, Side
from engine.errors import ConfigurationError
from engine.journal import Journal
from engine.journal_rows import (
    MIGRATIONS,
    SCHEMA_VERSION,
    equity_stmt,
    fill_commission_stmt,
    fill_stmt,
    insert_order_stmt,
    order_event_stmt,
    update_order_stmt,
)


def _fill(exec_id: str = "0001.01", quantity: float = 10) -> Fill:
    return Fill(
        exec_id=exec_id,
        order_ref="tb-1",
        perm_id=77,
        time=datetime(2026, 11, 20, 15, 0, tzinfo=UTC),
        symbol="AAPL",
        side=Side.BUY,
        quantity=quantity,
        price=190.25,
    )


async def test_new_journal_is_wal_and_current(tmp_path: Path) -> None:
    journal = await Journal.open(tmp_path / "j.sqlite3")
    try:
        assert await journal.journal_mode() == "wal"
        assert await journal.schema_version() == SCHEMA_VERSION
    finally:
        await journal.close()


async def test_duplicate_fill_is_harmless(tmp_path: Path) -> None:
    journal = await Journal.open(tmp_path / "j.sqlite3")
    try:
        assert await journal.execute(fill_stmt(_fill())) == 1
        assert await journal.execute(fill_stmt(_fill())) == 0
        await journal.execute(fill_commission_stmt("0001.01", 1.0, 0.0))
        fills = await journal.recent_fills()
        assert len(fills) == 1
        assert fills[0].commission == 1.0
    finally:
        await journal.close()


async def test_migration_from_version_1_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:  # a database as version 1 of tradebot left it
        db.executescript(MIGRATIONS[0] + "\nPRAGMA user_version = 1;")
        db.execute(
            "INSERT INTO orders VALUES ('tb-old', '2026-01-02T15:00:00+00:00', 'MSFT', 'BUY', 5,"
            " 'MKT', NULL, NULL, 'Filled', 3, 99, 'seed', '2026-01-02T15:00:01+00:00')"
        )
        db.execute("INSERT INTO state VALUES ('paused', '1')")
    db.close()
    journal = await Journal.open(path)
    try:
        assert await journal.schema_version() == SCHEMA_VERSION
        order = await journal.order("tb-old")
        assert order is not None and order.status is OrderStatus.FILLED
        assert order.perm_id == 99
        assert await journal.get_state("paused") == "1"
        outbox_id = await journal.outbox_add("telegram", "hello")
        assert await journal.outbox_pending("telegram") == [(outbox_id, "hello")]
    finally:
        await journal.close()


def _aiosqlite_threads() -> list[threading.Thread]:
    """aiosqlite connection threads still running after a moment to finish. Each is a
    non-daemon thread: one left running keeps the process alive after main() returns (the
    hang of issue 8, item 8)."""
    workers = [t for t in threading.enumerate() if "_connection_worker_thread" in t.name]
    for worker in workers:
        worker.join(timeout=2)  # a stopped connection's thread ends at once
    return [worker for worker in workers if worker.is_alive()]


async def test_newer_schema_is_refused_untouched_and_closed(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    with sqlite3.connect(path) as db:  # rollback mode: setting WAL would rewrite the header
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    db.close()
    before = path.read_bytes()
    with pytest.raises(ConfigurationError) as caught:
        await Journal.open(path)
    assert str(caught.value) == (
        f"DB_PATH: {path} has journal schema {SCHEMA_VERSION + 5}, newer than this tradebot's "
        f"({SCHEMA_VERSION}); upgrade tradebot or point DB_PATH elsewhere"
    )
    assert path.read_bytes() == before
    assert _aiosqlite_threads() == []


async def test_corrupt_journal_is_refused_and_its_connection_closed(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.sqlite3"
    path.write_bytes(random.Random(8).randbytes(16_384))
    before = path.read_bytes()
    with pytest.raises(ConfigurationError) as caught:
        await Journal.open(path)
    assert str(caught.value).startswith(f"DB_PATH: {path} is not a tradebot journal (")
    assert "\n" not in str(caught.value)
    assert path.read_bytes() == before
    assert _aiosqlite_threads() == []


async def test_journal_path_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"^DB_PATH: cannot write the journal"):
        await Journal.open(tmp_path)
    assert _aiosqlite_threads() == []


async def test_journal_under_a_regular_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "somefile").write_text("x")
    with pytest.raises(ConfigurationError, match=r"^DB_PATH: cannot create the folder"):
        await Journal.open(tmp_path / "somefile" / "x.sqlite3")


async def test_order_lifecycle_round_trip(tmp_path: Path) -> None:
    journal = await Journal.open(tmp_path / "j.sqlite3")
    try:
        order = Order(order_ref="tb-1", symbol="AAPL", side=Side.BUY, quantity=10, reason="x")
        await journal.execute(insert_order_stmt(order))
        assert [o.order_ref for o in await journal.open_orders()] == ["tb-1"]
        await journal.execute(
            update_order_stmt("tb-1", OrderStatus.SUBMITTED, ib_order_id=5, perm_id=0)
        )
        now = datetime.now(UTC)
        await journal.execute(order_event_stmt(
            OrderUpdate("tb-1", OrderStatus.FILLED, 10, 0, 190.0, now, ib_order_id=5, perm_id=9)
        ))
        await journal.execute(update_order_stmt("tb-1", OrderStatus.FILLED, perm_id=9))
        stored = await journal.order("tb-1")
        assert stored is not None
        assert (stored.status, stored.ib_order_id, stored.perm_id) == (OrderStatus.FILLED, 5, 9)
        assert await journal.open_orders() == []
        with pytest.raises(sqlite3.IntegrityError):
            await journal.execute(insert_order_stmt(order))
    finally:
        await journal.close()


async def test_writes_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = await Journal.open(path)
    await journal.execute(fill_stmt(_fill("e1")))
    await journal.log_event("warning", "bad_bar", "dropped", {"symbol": "AAPL"})
    await journal.set_state("paused", "1")
    await journal.close()
    journal = await Journal.open(path)
    try:
        assert await journal.has_fill("e1")
        events = await journal.recent_events(levels=("warning",))
        assert events[0].details == {"symbol": "AAPL"}
        assert await journal.get_state("paused") == "1"
    finally:
        await journal.close()


async def test_naive_time_is_refused(tmp_path: Path) -> None:
    journal = await Journal.open(tmp_path / "j.sqlite3")
    try:
        with pytest.raises(ValueError, match="naive"):
            await journal.execute(equity_stmt(datetime(2026, 1, 1), 1.0, 0.0, 0.0))
    finally:
        await journal.close()
