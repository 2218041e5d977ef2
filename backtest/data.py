"""Bars for a backtest: a CSV file or the journal's bars table, checked before any bar is used.

A CSV has the header ``datetime,open,high,low,close,volume`` (more columns are ignored), ISO 8601
datetimes (a time without an offset is UTC) in ascending order, and positive prices. The checks
are vectorised; each problem is a `DataError` naming the line and what is wrong with it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import ConfigurationError

COLUMNS = ("datetime", "open", "high", "low", "close", "volume")
PRICES = ("open", "high", "low", "close")

# The journal's bars table, written by `tradebot download` and read here. Times are the bar's
# start in the journal's format (ISO 8601 UTC, `engine.journal_rows.iso`).
BARS_TABLE = """
CREATE TABLE IF NOT EXISTS bars (
    symbol   TEXT NOT NULL,
    bar_size TEXT NOT NULL,
    time     TEXT NOT NULL,
    open     REAL NOT NULL,
    high     REAL NOT NULL,
    low      REAL NOT NULL,
    close    REAL NOT NULL,
    volume   REAL NOT NULL,
    PRIMARY KEY (symbol, bar_size, time)
)
"""


class DataError(ConfigurationError):
    """The bars cannot be used; the message is one line naming the row and the problem."""


@dataclass(frozen=True, slots=True)
class BarData:
    """Checked bars of one symbol: a frame indexed by the bars' start (UTC) with float columns
    open, high, low, close, volume; and the bar size in seconds."""

    symbol: str
    frame: pd.DataFrame
    bar_seconds: int

    def __len__(self) -> int:
        return len(self.frame)


def load_csv(path: str | Path, symbol: str | None = None) -> BarData:
    """Read and check a CSV of bars; the symbol defaults to the file's name (upper case)."""
    path = Path(path)
    try:
        # Everything as text first: a bad cell is then found and named, not silently NaN.
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read ({exc})") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        reason = "the file is empty" if isinstance(exc, pd.errors.EmptyDataError) else str(exc)
        raise DataError(f"{path}: not a CSV of bars ({reason.splitlines()[0]})") from None
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    # Line numbers as an editor shows them: the header is line 1.
    return check(raw, symbol or path.stem.upper(), str(path), first_line=2)


def check(
    raw: pd.DataFrame, symbol: str, source: str, first_line: int = 2, row_word: str = "line"
) -> BarData:
    """Check text columns `COLUMNS` and turn them into a `BarData`; a bad row is named as
    `row_word` with its number counted from `first_line`."""
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise DataError(
            f"{source}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(the header must be {','.join(COLUMNS)})"
        )
    if raw.empty:
        raise DataError(f"{source}: no bars (a header and no rows)")

    def fail(row: int, problem: str) -> DataError:
        return DataError(f"{source}: {row_word} {first_line + row}: {problem}")

    text = raw["datetime"].astype(str).str.strip()
    times = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    bad = np.flatnonzero(times.isna().to_numpy())
    if bad.size:
        row = int(bad[0])
        raise fail(row, f"datetime {text.iloc[row]!r} is not an ISO 8601 date and time")

    values = {}
    for column in (*PRICES, "volume"):
        cells = raw[column].astype(str).str.strip()
        numbers = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=float)
        not_finite = np.flatnonzero(~np.isfinite(numbers))
        if not_finite.size:
            row = int(not_finite[0])
            raise fail(row, f"{column} {cells.iloc[row]!r} is not a number")
        values[column] = numbers
    for column in PRICES:
        not_positive = np.flatnonzero(values[column] <= 0)
        if not_positive.size:
            row = int(not_positive[0])
            raise fail(row, f"{column} is {values[column][row]:g}; prices must be greater than 0")
    negative = np.flatnonzero(values["volume"] < 0)
    if negative.size:
        row = int(negative[0])
        raise fail(row, f"volume is {values['volume'][row]:g}; it cannot be negative")
    high, low = values["high"], values["low"]
    outside = np.flatnonzero(
        (high < low) | (high < values["open"]) | (high < values["close"])
        | (low > values["open"]) | (low > values["close"])
    )
    if outside.size:
        row = int(outside[0])
        raise fail(row, "high and low do not contain open and close (high must be the highest "
                        "price of the bar, low the lowest)")

    stamps = times.to_numpy(dtype="datetime64[ns]")
    not_after = np.flatnonzero(stamps[1:] <= stamps[:-1])
    if not_after.size:
        row = int(not_after[0]) + 1
        raise fail(row, f"{times.iloc[row].isoformat()} is not after the row before it "
                        f"({times.iloc[row - 1].isoformat()}); rows must be in ascending time "
                        "order, each time once")

    frame = pd.DataFrame(values, index=pd.DatetimeIndex(times, name="datetime"))
    return BarData(symbol, frame, bar_seconds(frame.index))


def bar_seconds(index: pd.DatetimeIndex) -> int:
    """The bar size: the most common step between consecutive bars (a day for one bar)."""
    if len(index) < 2:
        return 86_400
    # asi8 counts in the index's unit (pandas ≥ 2 keeps s, ms, us or ns).
    per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[index.unit]
    steps = np.diff(index.asi8) // per_second
    values, counts = np.unique(steps, return_counts=True)
    return max(int(values[np.argmax(counts)]), 1)


def load_journal(db_path: str | Path, symbol: str, bar_size: str) -> BarData:
    """Read `symbol`'s bars of `bar_size` from the journal's bars table (read-only)."""
    db_path = Path(db_path)
    if not db_path.exists():
        raise DataError(f"journal:{symbol}: no journal at {db_path} (DB_PATH)")
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
            rows = db.execute(
                "SELECT time, open, high, low, close, volume FROM bars "
                "WHERE symbol = ? AND bar_size = ? ORDER BY time", (symbol, bar_size),
            ).fetchall()
            sizes = [r[0] for r in db.execute(
                "SELECT DISTINCT bar_size FROM bars WHERE symbol = ?", (symbol,))]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            raise DataError(f"journal:{symbol}: the journal {db_path} has no bars yet "
                            "(tradebot download fetches them)") from None
        raise DataError(f"journal:{symbol}: cannot read {db_path} ({exc})") from None
    if not rows:
        other = f" (it has {', '.join(sizes)}: set BAR_SIZE)" if sizes else ""
        raise DataError(f"journal:{symbol}: no {bar_size!r} bars in {db_path}{other}")
    raw = pd.DataFrame(rows, columns=list(COLUMNS)).astype(str)
    return check(raw, symbol, f"journal:{symbol}", first_line=1, row_word="bar")
