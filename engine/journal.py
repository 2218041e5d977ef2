"""The journal: every order intent, broker answer, fill and decision, in SQLite (aiosqlite).

WAL mode with synchronous=FULL, so an order or fill row is on disk when its write returns.
The schema is versioned with PRAGMA user_version and upgraded in place by ordered migrations;
a database made by an older version is never dropped. The schema, the statement builders and
the row conversions are `engine/journal_rows.py`'s; this module runs them.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite

from engine.domain import Bar, Fill, Order, OrderStatus
from engine.errors import ConfigurationError
from engine.journal_maintenance import (
    PRUNE_BATCH,
    PRUNE_PAUSE_SECONDS,
    PruneResult,
    backup_before_migration,
    prune_rows,
)
from engine.journal_rows import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Statement,
    event_stmt,
    fill_from_row,
    iso,
    order_from_row,
    state_stmt,
)

_OPEN_STATUSES = tuple(status.value for status in OrderStatus if not status.is_done)


@dataclass(frozen=True, slots=True)
class EventRow:
    at: datetime
    level: str
    kind: str
    message: str
    details: dict[str, Any] | None


class Journal:
    """The one connection to the journal database; every write commits before it returns."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path

    @classmethod
    async def open(cls, path: str | Path) -> Journal:
        """Open the journal at `path` (created if new) and bring its schema up to date.

        A journal that cannot be used (not a database, a newer schema, a read-only file or
        folder) raises ConfigurationError naming DB_PATH and what is wrong; the connection is
        closed first, so its thread cannot keep the process alive, and nothing was written.
        """
        path = Path(path)
        if str(path) != ":memory:":
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigurationError(
                    f"DB_PATH: cannot create the folder {path.parent} ({exc.strerror})"
                ) from None
        try:
            db = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise ConfigurationError(_unusable(path, exc)) from None
        try:
            db.row_factory = aiosqlite.Row
            journal = cls(db, path)
            # Refused before WAL mode is set: setting it rewrites the header of a journal
            # kept in rollback mode, and a refused file must stay as it was.
            version = await journal.schema_version()
            journal._refuse_newer(version)
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=FULL")
            await db.execute("PRAGMA foreign_keys=ON")
            await db.execute("PRAGMA busy_timeout=5000")
            await journal._migrate(version)
        except BaseException as exc:
            await db.close()
            if isinstance(exc, sqlite3.Error):
                raise ConfigurationError(_unusable(path, exc)) from None
            raise
        return journal

    async def close(self) -> None:
        await self._db.close()

    async def schema_version(self) -> int:
        async with self._db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def journal_mode(self) -> str:
        async with self._db.execute("PRAGMA journal_mode") as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row else ""

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise ConfigurationError(
                f"DB_PATH: {self.path} has journal schema {version}, newer than this "
                f"tradebot's ({SCHEMA_VERSION}); upgrade tradebot or point DB_PATH elsewhere"
            )

    async def _migrate(self, version: int) -> None:
        """Upgrade from `version`, already checked not to be newer than this tradebot's; a
        journal with data in it is copied first (journal_maintenance.backup_before_migration)."""
        if 0 < version < SCHEMA_VERSION and str(self.path) != ":memory:":
            await asyncio.to_thread(backup_before_migration, self.path, SCHEMA_VERSION)
        for number in range(version, SCHEMA_VERSION):
            # One transaction per step: a failed migration leaves the previous version intact.
            await self._db.executescript(
                f"BEGIN;\n{MIGRATIONS[number]}\nPRAGMA user_version = {number + 1};\nCOMMIT;"
            )

    async def execute(self, statement: Statement) -> int:
        """Write one row (a statement from the `*_stmt` builders); committed when it returns.
        Returns the number of rows changed (0 for a fill already journaled)."""
        return await self._write(*statement)

    async def _write(self, sql: str, params: Iterable[Any] = ()) -> int:
        cursor = await self._db.execute(sql, tuple(params))
        rowcount = cursor.rowcount
        await cursor.close()
        return rowcount

    async def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        async with self._db.execute(sql, tuple(params)) as cursor:
            return list(await cursor.fetchall())

    # --- orders -------------------------------------------------------------------------

    async def order(self, order_ref: str) -> Order | None:
        rows = await self._rows("SELECT * FROM orders WHERE order_ref = ?", (order_ref,))
        return order_from_row(rows[0]) if rows else None

    async def open_orders(self) -> list[Order]:
        """Orders whose outcome the journal does not know to be final."""
        marks = ",".join("?" * len(_OPEN_STATUSES))
        rows = await self._rows(
            f"SELECT * FROM orders WHERE status IN ({marks}) ORDER BY created_at", _OPEN_STATUSES
        )
        return [order_from_row(row) for row in rows]

    async def recent_orders(self, limit: int = 20, since: datetime | None = None) -> list[Order]:
        rows = await self._rows(
            "SELECT * FROM orders WHERE created_at >= ? ORDER BY created_at DESC LIMIT ?",
            (iso(since) if since else "", limit),
        )
        return [order_from_row(row) for row in rows]

    # --- fills --------------------------------------------------------------------------

    async def has_fill(self, exec_id: str) -> bool:
        return bool(await self._rows("SELECT 1 FROM fills WHERE exec_id = ?", (exec_id,)))

    async def recent_fills(self, limit: int = 20, since: datetime | None = None) -> list[Fill]:
        rows = await self._rows(
            "SELECT * FROM fills WHERE time >= ? ORDER BY time DESC LIMIT ?",
            (iso(since) if since else "", limit),
        )
        return [fill_from_row(row) for row in rows]

    async def fills(self, since: datetime | None = None) -> list[Fill]:
        """Every fill (after `since`), oldest first."""
        rows = await self._rows(
            "SELECT * FROM fills WHERE time >= ? ORDER BY time, exec_id",
            (iso(since) if since else "",),
        )
        return [fill_from_row(row) for row in rows]

    async def fills_for(self, order_ref: str) -> list[Fill]:
        rows = await self._rows(
            "SELECT * FROM fills WHERE order_ref = ? ORDER BY time", (order_ref,)
        )
        return [fill_from_row(row) for row in rows]

    async def fills_between(
        self, first: datetime, last: datetime, after_mark: int = 0
    ) -> list[Fill]:
        """The fills executed from `first` to `last` (both included), journaled after
        `after_mark`, oldest first."""
        rows = await self._rows(
            "SELECT * FROM fills WHERE time >= ? AND time <= ? AND rowid > ? "
            "ORDER BY time, exec_id", (iso(first), iso(last), after_mark),
        )
        return [fill_from_row(row) for row in rows]

    async def last_fill_mark(self) -> int:
        """A mark after every fill journaled so far (fills later journaled come after it)."""
        rows = await self._rows("SELECT COALESCE(MAX(rowid), 0) FROM fills")
        return int(rows[0][0])

    async def net_fills(self, after_mark: int) -> dict[str, float]:
        """Each symbol's signed quantity over the fills journaled after `after_mark`."""
        rows = await self._rows(
            "SELECT symbol, SUM(CASE WHEN side = 'BUY' THEN quantity ELSE -quantity END) "
            "FROM fills WHERE rowid > ? GROUP BY symbol", (after_mark,)
        )
        return {str(row[0]): float(row[1]) for row in rows}

    # --- signals, events, equity ----------------------------------------------------------

    async def log_event(
        self,
        level: str,
        kind: str,
        message: str,
        details: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> None:
        await self._write(*event_stmt(level, kind, message, details, at))

    async def recent_events(
        self,
        limit: int = 20,
        since: datetime | None = None,
        levels: tuple[str, ...] | None = None,
    ) -> list[EventRow]:
        sql = "SELECT * FROM events WHERE at >= ?"
        params: list[Any] = [iso(since) if since else ""]
        if levels:
            sql += f" AND level IN ({','.join('?' * len(levels))})"
            params.extend(levels)
        rows = await self._rows(sql + " ORDER BY id DESC LIMIT ?", [*params, limit])
        return [
            EventRow(
                at=datetime.fromisoformat(row["at"]),
                level=row["level"],
                kind=row["kind"],
                message=row["message"],
                details=json.loads(row["details"]) if row["details"] else None,
            )
            for row in rows
        ]

    async def equity_curve(self, limit: int = 2000) -> list[tuple[datetime, float]]:
        rows = await self._rows(
            "SELECT at, net_liquidation FROM equity WHERE net_liquidation IS NOT NULL"
            " ORDER BY at DESC LIMIT ?",
            (limit,),
        )
        return [(datetime.fromisoformat(row[0]), float(row[1])) for row in reversed(rows)]

    # --- upkeep ------------------------------------------------------------------------

    async def prune(
        self,
        retention: timedelta,
        now: datetime | None = None,
        *,
        batch: int = PRUNE_BATCH,
        pause: float = PRUNE_PAUSE_SECONDS,
    ) -> PruneResult:
        """Delete the routine events and the delivered alerts older than `retention`, in short
        batches (engine/journal_maintenance.py says which rows, and why)."""
        cutoff = iso((now or datetime.now(UTC)) - retention)
        return await prune_rows(self._db, cutoff, batch=batch, pause=pause)

    # --- state ------------------------------------------------------------------------

    async def add_bars(self, bar_size: str, bars: Iterable[Bar]) -> int:
        """Store historical bars of `bar_size` (IB's text, "1 min"); a bar already stored (same
        symbol, size and start time) is kept as it was. Returns how many were new."""
        rows = [
            (b.symbol, bar_size, iso(b.time), b.open, b.high, b.low, b.close, b.volume)
            for b in bars
        ]
        before = self._db.total_changes
        await self._db.execute("BEGIN")
        try:
            await self._db.executemany(
                "INSERT OR IGNORE INTO bars (symbol, bar_size, time, open, high, low, close, "
                "volume) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        except BaseException:
            await self._db.execute("ROLLBACK")
            raise
        await self._db.execute("COMMIT")
        return self._db.total_changes - before

    async def bars(self, symbol: str, bar_size: str | None = None) -> list[Bar]:
        """The stored bars of `symbol` (of `bar_size`, or all sizes), oldest first."""
        sql = "SELECT * FROM bars WHERE symbol = ?"
        params: tuple[Any, ...] = (symbol,)
        if bar_size is not None:
            sql, params = sql + " AND bar_size = ?", (symbol, bar_size)
        rows = await self._rows(sql + " ORDER BY bar_size, time", params)
        return [
            Bar(r["symbol"], datetime.fromisoformat(r["time"]), r["open"], r["high"], r["low"],
                r["close"], r["volume"])
            for r in rows
        ]  # fmt: skip

    async def bar_sizes(self, symbol: str) -> list[str]:
        """The bar sizes stored for `symbol`."""
        rows = await self._rows("SELECT DISTINCT bar_size FROM bars WHERE symbol = ?", (symbol,))
        return sorted(row[0] for row in rows)

    async def get_state(self, key: str, default: str | None = None) -> str | None:
        rows = await self._rows("SELECT value FROM state WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else default

    async def set_state(self, key: str, value: str) -> None:
        await self._write(*state_stmt(key, value))

    # --- outbox: alerts not yet delivered -------------------------------------------------

    async def outbox_add(self, channel: str, payload: str) -> int:
        cursor = await self._db.execute(
            "INSERT INTO outbox (channel, created_at, payload) VALUES (?,?,?)",
            (channel, iso(), payload),
        )
        row_id = cursor.lastrowid
        await cursor.close()
        return int(row_id or 0)

    async def outbox_pending(self, channel: str, limit: int = 100) -> list[tuple[int, str]]:
        rows = await self._rows(
            "SELECT id, payload FROM outbox WHERE channel = ? AND delivered_at IS NULL"
            " ORDER BY id LIMIT ?",
            (channel, limit),
        )
        return [(int(row[0]), str(row[1])) for row in rows]

    async def outbox_done(self, outbox_id: int) -> None:
        await self._write(
            "UPDATE outbox SET delivered_at = ? WHERE id = ?", (iso(), outbox_id)
        )


def _unusable(path: Path, exc: sqlite3.Error) -> str:
    """One line for the user from SQLite's error on opening `path`."""
    reason = str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in reason:
        return (
            f"DB_PATH: {path} is not a tradebot journal ({reason}); move it away or point "
            "DB_PATH elsewhere"
        )
    if "readonly" in reason or "read-only" in reason or "unable to open" in reason:
        return (
            f"DB_PATH: cannot write the journal {path} ({reason}); the file and its folder "
            "must be writable"
        )
    return f"DB_PATH: cannot use the journal {path} ({reason})"
