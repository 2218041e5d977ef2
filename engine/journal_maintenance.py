"""Journal upkeep for a journal that lives for years: pruning routine rows in short batches, and
consistent copies of the database while the bot writes to it (SQLite's online backup API).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import aiosqlite

from engine.errors import ConfigurationError

log = logging.getLogger(__name__)

# Event kinds that only describe the weather: market data (gaps, bad bars, quiet streams,
# warm-ups), the link to the gateway coming and going, IB's notices, and this pruning itself.
# Every other kind is kept forever: commands, state changes, order states, reconciliations,
# risk decisions, security (strangers, stale commands), configuration, failures, and any kind
# added later and not listed here. Even a routine kind is kept when it is an error, or when it
# names an order (an IB error about an order carries its order_ref).
ROUTINE_EVENT_KINDS = frozenset(
    {"gap", "bad_bar", "quiet", "warmup", "connection", "ib_error", "prune"}
)

# Rows deleted per transaction: each batch holds the database's write lock for milliseconds, so
# an order intent, committed on a connection that never waits for a lock, rarely finds it held.
PRUNE_BATCH = 1000
# Between batches, the lock is left free this long for the writers that waited for it.
PRUNE_PAUSE_SECONDS = 0.02

_KINDS = ",".join(f"'{kind}'" for kind in sorted(ROUTINE_EVENT_KINDS))
_ROUTINE_EVENT = (
    f"kind IN ({_KINDS}) AND level != 'error' AND (CASE WHEN json_valid(details)"
    " THEN json_extract(details, '$.order_ref') END) IS NULL"
)


@dataclass(frozen=True, slots=True)
class PruneResult:
    events: tuple[int, ...]  # event rows deleted by each batch
    outbox: tuple[int, ...]  # delivered alerts deleted by each batch

    @property
    def rows(self) -> int:
        return sum(self.events) + sum(self.outbox)


async def prune_rows(
    db: aiosqlite.Connection,
    cutoff: str,
    *,
    batch: int = PRUNE_BATCH,
    pause: float = PRUNE_PAUSE_SECONDS,
) -> PruneResult:
    """Delete routine events and delivered alerts from before `cutoff` (an ISO time as the
    journal writes it), each batch one short DELETE in its own transaction on `db`, an
    autocommit connection. Orders, order events, fills, signals, equity and state are kept."""
    events = await _prune(
        db,
        # The events' `at` index bounds each batch; the batch ends at the time of its
        # `batch`-th row, and the next starts after it, so kept rows are not scanned again.
        first=f"SELECT max(at) FROM (SELECT at FROM events WHERE at > ? AND at < ?"
        f" AND {_ROUTINE_EVENT} ORDER BY at LIMIT ?)",
        delete=f"DELETE FROM events WHERE at > ? AND at <= ? AND at < ? AND {_ROUTINE_EVENT}",
        start="",
        cutoff=cutoff,
        batch=batch,
        pause=pause,
    )
    outbox = await _prune(
        db,
        first="SELECT max(id) FROM (SELECT id FROM outbox WHERE id > ? AND"
        " delivered_at IS NOT NULL AND delivered_at < ? ORDER BY id LIMIT ?)",
        delete="DELETE FROM outbox WHERE id > ? AND id <= ? AND delivered_at IS NOT NULL"
        " AND delivered_at < ?",
        start=0,
        cutoff=cutoff,
        batch=batch,
        pause=pause,
    )
    return PruneResult(events, outbox)


async def _prune(
    db: aiosqlite.Connection,
    *,
    first: str,
    delete: str,
    start: str | int,
    cutoff: str,
    batch: int,
    pause: float,
) -> tuple[int, ...]:
    """Batches of `delete`, each up to the key `first` finds `batch` rows on (a read: no lock)."""
    deleted: list[int] = []
    after = start
    while True:
        async with db.execute(first, (after, cutoff, batch)) as cursor:
            row = await cursor.fetchone()
        upto = row[0] if row else None
        if upto is None:
            return tuple(deleted)
        cursor = await db.execute(delete, (after, upto, cutoff))
        deleted.append(cursor.rowcount)
        await cursor.close()
        after = upto
        await asyncio.sleep(pause)


# --- copies ------------------------------------------------------------------------------


def backup_database(source: Path, target: Path) -> None:
    """Copy the SQLite database `source` to `target`, as it was at one moment, while other
    connections go on writing to it.

    One step of SQLite's online backup: under WAL it reads one snapshot and takes no lock a
    writer waits for. The copy is one self-contained file (no -wal beside it). An existing
    `target` is never overwritten (FileExistsError, before anything is copied); a failed copy
    leaves no `target`. Raises sqlite3.Error or OSError.
    """
    # Created here, exclusively, so nothing else can appear at `target` meanwhile; replaced by
    # the finished copy at the end, in one rename.
    os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    partial = target.with_name(f".{target.name}.partial")
    try:
        partial.unlink(missing_ok=True)
        source_db = sqlite3.connect(f"file:{quote(str(source))}?mode=rw", uri=True, timeout=5)
        try:
            copy = sqlite3.connect(partial)
            try:
                source_db.backup(copy)
                copy.execute("PRAGMA journal_mode=DELETE")
            finally:
                copy.close()
        finally:
            source_db.close()
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            target.unlink()
        raise
    finally:
        with contextlib.suppress(OSError):
            partial.unlink()


def migration_backup_path(path: Path, version: int) -> Path:
    """Where the copy of the journal at `path` goes before its schema becomes `version`."""
    return path.with_name(f"{path.name}.before-v{version}.sqlite3")


def backup_before_migration(path: Path, version: int) -> Path:
    """Copy the journal before its schema is upgraded to `version`; an upgrade that went wrong
    (or a tradebot taken back to an older release) can start again from the copy. A copy
    already there (an upgrade that failed) is kept: it holds the same schema."""
    target = migration_backup_path(path, version)
    try:
        backup_database(path, target)
    except FileExistsError:
        if target.is_file():
            log.info("journal copy %s already there; kept", target)
            return target
        reason = "something other than a file is there"
    except (sqlite3.Error, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    else:
        log.warning("journal schema upgrade to version %d: a copy of the journal is in %s",
                    version, target)
        return target
    raise ConfigurationError(
        f"DB_PATH: cannot copy the journal to {target} before upgrading its schema "
        f"({reason}); make room or make the folder writable"
    )
