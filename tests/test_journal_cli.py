"""`tradebot journal` as a user types it: the fills as CSV for a spreadsheet or the taxes, and a
backup made while the bot writes, which never overwrites a file."""

from __future__ import annotations

import csv
import io
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.domain import Fill, Side
from engine.journal_rows import MIGRATIONS, SCHEMA_VERSION, event_stmt, fill_stmt
from tests.tradebot_script import clean_env, digest, run_tradebot

T0 = datetime(2026, 11, 20, 15, 0, 1, tzinfo=UTC)


def _journal(path: Path, fills: list[Fill]) -> Path:
    with sqlite3.connect(path) as db:
        for migration in MIGRATIONS:
            db.executescript(migration)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("PRAGMA journal_mode=WAL")
        for fill in fills:
            db.execute(*fill_stmt(fill))
    db.close()
    return path


def _fill(exec_id: str, at: datetime, **fields: object) -> Fill:
    values: dict[str, object] = dict(
        exec_id=exec_id, order_ref="tb-1", perm_id=7, time=at, symbol="AAPL", side=Side.BUY,
        quantity=10.0, price=190.25, commission=1.0, realized_pnl=0.0,
    )
    values.update(fields)
    return Fill(**values)  # type: ignore[arg-type]


def test_fills_as_csv_oldest_first(tmp_path: Path) -> None:
    db = _journal(tmp_path / "journal.sqlite3", [
        _fill("0002.01", T0 + timedelta(hours=1), order_ref="tb-2", side=Side.SELL,
              quantity=2.5, price=191.125, commission=None, realized_pnl=None),
        _fill("0001.01", T0),
    ])  # fmt: skip
    result = run_tradebot("journal", "--fills", "--csv", cwd=tmp_path,
                          env=clean_env(DB_PATH=str(db)))  # fmt: skip
    assert result.code == 0, result.stderr
    assert list(csv.reader(io.StringIO(result.stdout))) == [
        ["time", "symbol", "side", "quantity", "price", "commission", "realized_pnl",
         "order_ref", "exec_id"],
        ["2026-11-20T15:00:01Z", "AAPL", "BUY", "10.0", "190.25", "1.0", "0.0", "tb-1",
         "0001.01"],
        ["2026-11-20T16:00:01Z", "AAPL", "SELL", "2.5", "191.125", "", "", "tb-2", "0002.01"],
    ]  # fmt: skip
    since = run_tradebot("journal", "--fills", "--csv", "--since", "2026-11-20T15:30",
                         cwd=tmp_path, env=clean_env(DB_PATH=str(db)))  # fmt: skip
    assert [row[-1] for row in csv.reader(io.StringIO(since.stdout))] == ["exec_id", "0002.01"]


def test_csv_is_for_the_fills(tmp_path: Path) -> None:
    db = _journal(tmp_path / "journal.sqlite3", [])
    result = run_tradebot("journal", "--csv", cwd=tmp_path, env=clean_env(DB_PATH=str(db)))
    assert result.code == 2
    assert result.lines == ["tradebot: --csv exports the fills: tradebot journal --fills --csv"]


def test_backup_while_the_bot_writes_opens_as_a_journal(tmp_path: Path) -> None:
    db = _journal(tmp_path / "journal.sqlite3", [_fill("0001.01", T0)])
    stop = threading.Event()

    def bot_writing() -> None:
        writer = sqlite3.connect(db, isolation_level=None, timeout=5)
        number = 0
        while not stop.is_set():
            number += 1
            writer.execute(*event_stmt("info", "warmup", f"row {number}", None, T0))
        writer.close()

    thread = threading.Thread(target=bot_writing, daemon=True)
    thread.start()
    try:
        result = run_tradebot("journal", "--backup", "copy.sqlite3", cwd=tmp_path,
                              env=clean_env(DB_PATH=str(db)))  # fmt: skip
    finally:
        stop.set()
        thread.join(5)
    assert result.code == 0, result.stderr
    assert result.stdout == f"journal {db} copied to copy.sqlite3\n"
    copy = tmp_path / "copy.sqlite3"
    listed = run_tradebot("journal", "--fills", "--csv", cwd=tmp_path,
                          env=clean_env(DB_PATH=str(copy)))  # fmt: skip
    assert listed.code == 0, listed.stderr
    assert listed.stdout.splitlines()[1].endswith(",tb-1,0001.01")
    with sqlite3.connect(copy) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    check.close()


def test_backup_never_overwrites(tmp_path: Path) -> None:
    db = _journal(tmp_path / "journal.sqlite3", [])
    taken = tmp_path / "taken.sqlite3"
    taken.write_text("yesterday's backup")
    before = digest(db)
    result = run_tradebot("journal", "--backup", str(taken), cwd=tmp_path,
                          env=clean_env(DB_PATH=str(db)))  # fmt: skip
    assert result.code == 2
    assert result.lines == [
        f"tradebot: --backup: {taken} exists; name a new file (a backup never overwrites)"
    ]
    assert taken.read_text() == "yesterday's backup"
    assert digest(db) == before


def test_backup_into_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    db = _journal(tmp_path / "journal.sqlite3", [])
    target = tmp_path / "nowhere" / "copy.sqlite3"
    result = run_tradebot("journal", "--backup", str(target), cwd=tmp_path,
                          env=clean_env(DB_PATH=str(db)))  # fmt: skip
    assert result.code == 2
    assert result.lines == [
        f"tradebot: --backup: cannot copy {db} to {target} (No such file or directory)"
    ]
