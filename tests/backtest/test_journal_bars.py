"""`journal:SYMBOL` reads the bars table `tradebot download` fills."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from backtest.data import BARS_TABLE, DataError, load_journal


def _journal(path: Path, rows: list[tuple[object, ...]]) -> Path:
    with sqlite3.connect(path) as db:
        db.execute(BARS_TABLE)
        db.executemany("INSERT INTO bars VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return path


def test_bars_of_the_bar_size_in_time_order(tmp_path: Path) -> None:
    db = _journal(tmp_path / "j.sqlite3", [
        ("AAPL", "1 min", "2026-01-05T14:31:00.000000+00:00", 10, 11, 9, 10.5, 5),
        ("AAPL", "1 min", "2026-01-05T14:30:00.000000+00:00", 10, 11, 9, 10.0, 5),
        ("AAPL", "5 mins", "2026-01-05T14:30:00.000000+00:00", 10, 11, 9, 10.0, 5),
        ("MSFT", "1 min", "2026-01-05T14:30:00.000000+00:00", 10, 11, 9, 10.0, 5),
    ])
    data = load_journal(db, "AAPL", "1 min")
    assert data.frame["close"].tolist() == [10.0, 10.5]
    assert (data.symbol, data.bar_seconds) == ("AAPL", 60)


def test_no_bars_of_that_size_names_the_sizes_there_are(tmp_path: Path) -> None:
    db = _journal(tmp_path / "j.sqlite3", [
        ("AAPL", "5 mins", "2026-01-05T14:30:00.000000+00:00", 10, 11, 9, 10.0, 5)])
    with pytest.raises(DataError, match=r"no '1 min' bars .* \(it has 5 mins: set BAR_SIZE\)"):
        load_journal(db, "AAPL", "1 min")


def test_a_bad_stored_bar_is_named(tmp_path: Path) -> None:
    db = _journal(tmp_path / "j.sqlite3", [
        ("AAPL", "1 min", "2026-01-05T14:30:00.000000+00:00", 10, 11, 9, -1, 5)])
    with pytest.raises(DataError, match="journal:AAPL: bar 1: close is -1"):
        load_journal(db, "AAPL", "1 min")
