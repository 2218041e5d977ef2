"""Journal writes from the engine's hot path: queued, batched, committed in one thread hop.

Broker callbacks are synchronous, so they queue their rows here. The writer commits what is
queued in one transaction on its own SQLite connection, in a thread: one trip off the event
loop and one fsync for a burst of fills, however busy the loop is. An order intent is
urgent: it goes ahead of routine rows, and placeOrder goes out as soon as it is on disk.
`commit_then` commits an entry's intent on the loop itself while the disk is fast (one
sub-millisecond fsync: a thread hop costs more, as the thread must wait for the GIL while the
loop decodes the rest of a burst of bars), and through the thread when it is not.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from engine.journal_rows import Statement

log = logging.getLogger(__name__)

# Who is told when a row is committed: a future, a callback (run on the loop), or nobody.
Outcome = int | BaseException
Waiter = asyncio.Future[int] | Callable[[Outcome], None] | None
Item = tuple[Statement, Waiter]

# Bounds how long an urgent write can wait behind a routine batch already being committed.
ROUTINE_BATCH = 16
# An intent is committed on the caller's thread (the loop) only while commits take less than
# this: a slow disk must not hold the loop; its intents go through the writer's thread.
INLINE_COMMIT_SECONDS = 0.002
# Routine rows wait this long after the first of a burst before they are committed together.
ROUTINE_GATHER_SECONDS = 0.005
# A writer task that died of a bug starts again after this long (a bug that repeats cannot spin).
RESTART_SECONDS = 1.0


class JournalWriter:
    def __init__(
        self, path: Path, busy_timeout: float = 5.0,
        inline_limit: float = INLINE_COMMIT_SECONDS,
    ) -> None:
        self._path = path
        self._busy_timeout = busy_timeout
        self._urgent: deque[Item] = deque()
        self._routine: deque[Item] = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        self.failures = 0  # commits failed in a row (busy or full disk)
        self._abort = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None
        # The intents' own connection, used on the loop's thread while the disk is fast: it
        # never waits for a lock (busy_timeout 0) and never checkpoints the WAL.
        self._inline_db: sqlite3.Connection | None = None
        self._inline_lock = threading.Lock()
        self._inline_limit = inline_limit  # a commit slower than this: the next goes to the thread
        self.inline_ok = True  # the last commit was fast: the next intent may go inline
        # Told (name, error) if the writer task dies of a bug; it is restarted after a moment,
        # and the rows queued behind the failed batch are written then.
        self.on_death: Callable[[str, BaseException], None] | None = None

    async def start(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="journal-writer")
        await asyncio.get_running_loop().run_in_executor(self._executor, self._connect)
        self._stopping = False
        self._start_task()

    def _start_task(self) -> None:
        self._task = asyncio.create_task(self._run(), name="journal-writer")
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """A writer that dies of a bug must not die in silence, nor leave fills unwritten."""
        if task.cancelled() or task.exception() is None or task is not self._task:
            return
        error = task.exception()
        log.error("the journal writer died; restarting it in %.1fs", RESTART_SECONDS,
                  exc_info=error)
        if self.on_death is not None and error is not None:
            self.on_death("journal writer", error)
        asyncio.get_running_loop().call_later(RESTART_SECONDS, self._restart)

    def _restart(self) -> None:
        if self._stopping or self._task is None or not self._task.done():
            return
        self._start_task()
        self._wake.set()

    def _connect(self) -> None:
        db = sqlite3.connect(self._path, isolation_level=None, timeout=self._busy_timeout,
                             check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        self._db = db
        inline = sqlite3.connect(self._path, isolation_level=None, timeout=0,
                                 check_same_thread=False)
        inline.execute("PRAGMA synchronous=FULL")
        inline.execute("PRAGMA wal_autocheckpoint=0")
        self._inline_db = inline

    def write(self, statement: Statement) -> None:
        """Queue a routine row; it reaches the disk with one of the next commits."""
        if self._stopping and self._task is None:
            log.error("journal row after shutdown not written: %s", statement[0].split("(")[0])
            return
        self._routine.append((statement, None))
        self._wake.set()

    async def write_durable(self, statement: Statement, *, urgent: bool = True) -> int:
        """Queue a row and wait until it is committed; return its rowcount or raise its error.

        Urgent rows overtake routine ones; urgent=False keeps the order of writes.
        """
        if self._task is None or (self._task.done() and self._stopping):
            raise RuntimeError("the journal writer is not running")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[int] = loop.create_future()
        if not urgent:
            self._routine.append((statement, done))
            self._wake.set()
            return await done
        # Straight to the database thread, without waiting for this loop to get round to the
        # writer task: the fsync overlaps whatever the loop is busy with. The thread commits
        # every urgent row queued by then in one transaction.
        self._urgent.append((statement, done))
        self._executor.submit(self._commit_urgent, loop)
        return await done

    def commit_then(self, statement: Statement, then: Callable[[Outcome], None]) -> None:
        """Commit an urgent row and call `then(rowcount or error)` the moment it is on disk.

        While the disk is fast (INLINE_COMMIT_SECONDS) and the connection free, the commit
        happens here, on the caller's thread, and `then` runs before this returns: an order
        goes out inside the callback that decided it, with no thread hop. Otherwise the
        writer's thread commits it and `then` runs on the loop right after.
        """
        if self._task is None or self._executor is None or (
            self._task.done() and self._stopping
        ):
            then(RuntimeError("the journal writer is not running"))
            return
        rowcount = self._commit_inline(statement) if self.inline_ok else None
        if rowcount is not None:
            then(rowcount)
            return
        self._urgent.append((statement, then))
        self._executor.submit(self._commit_urgent, asyncio.get_running_loop())

    async def flush(self) -> None:
        """Wait until every row queued so far is committed."""
        await self.write_durable(("SELECT 1", ()), urgent=False)

    async def stop(self, timeout: float = 5.0) -> None:
        """Commit what is queued and close; after `timeout` (a disk that cannot be written)
        give up, say how many rows were lost, and never hang the process's exit."""
        if self._task is None:
            return
        self._stopping = True
        if self._task.done():  # died of a bug: a fresh one writes what is queued, then ends
            self._start_task()
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            self._abort.set()
            self._task.cancel()
            lost = len(self._routine) + len(self._urgent)
            log.error("journal not writable at shutdown: %d row(s) not written", lost)
        except Exception as exc:  # it died of a bug earlier, reported then; stop regardless
            log.debug("journal writer had died: %s", exc)
        self._task = None
        if self._executor is not None:
            if not self._abort.is_set():
                await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
            self._executor.shutdown(wait=not self._abort.is_set(), cancel_futures=True)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
        with self._inline_lock:
            if self._inline_db is not None:
                self._inline_db.close()
                self._inline_db = None

    def _commit_inline(self, statement: Statement) -> int | None:
        """Commit one row on this thread through the intents' own connection, unless another
        writer holds the database (no waiting: busy_timeout 0); None if not committed."""
        db = self._inline_db
        if db is None or not self._inline_lock.acquire(blocking=False):
            return None
        started = time.perf_counter()
        try:
            db.execute("BEGIN IMMEDIATE")
            rowcount = db.execute(*statement).rowcount
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            try:
                if db.in_transaction:
                    db.execute("ROLLBACK")
            except sqlite3.Error:
                log.exception("rolling back an inline intent failed")
            log.debug("intent not committed inline (%s); the writer's thread takes it", exc)
            return None
        finally:
            self.inline_ok = time.perf_counter() - started < self._inline_limit
            self._inline_lock.release()
        return rowcount

    def _commit_urgent(self, loop: asyncio.AbstractEventLoop) -> None:
        """In the database thread: commit the urgent rows queued so far, then tell the loop."""
        batch = []
        while self._urgent:  # deque pops are atomic: the loop may append meanwhile
            batch.append(self._urgent.popleft())
        if not batch:
            return  # an earlier call took them
        while True:
            committed, outcomes = self._apply([statement for statement, _ in batch])
            if committed:
                break
            if self._abort.wait(0.05):  # busy or full disk: retried until shutdown gives up
                outcomes = [RuntimeError("journal writer stopped")] * len(batch)
                break
        loop.call_soon_threadsafe(_resolve, batch, outcomes)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            if not self._stopping:
                # Let a burst of rows (a burst of bars, fills) gather, so it is one commit
                # that does not hold the connection while intents want it inline.
                await asyncio.sleep(ROUTINE_GATHER_SECONDS)
            self._wake.clear()
            while self._routine:
                source = self._routine
                count = min(ROUTINE_BATCH, len(source))
                batch = [source.popleft() for _ in range(count)]
                try:
                    committed, outcomes = await loop.run_in_executor(
                        self._executor, self._apply, [statement for statement, _ in batch]
                    )
                except BaseException as exc:  # a bug: whoever waits on these rows is told
                    _resolve(batch, [exc] * len(batch))
                    raise
                if not committed:
                    # Busy or full disk: nothing of the batch is on disk. Keep it, in order,
                    # and try again; fills and order states must not be dropped.
                    source.extendleft(reversed(batch))
                    self.failures += 1
                    await asyncio.sleep(min(0.05 * 2 ** min(self.failures, 7), 5.0))
                    continue
                self.failures = 0
                _resolve(batch, outcomes)
            if self._stopping:
                return

    def _apply(self, statements: list[Statement]) -> tuple[bool, list[int | BaseException]]:
        """In the writer's thread: one transaction, one commit, for the whole batch."""
        started = time.perf_counter()
        try:
            return self._apply_batch(statements)
        finally:  # how fast the disk is now decides where the next intent is committed
            self.inline_ok = time.perf_counter() - started < self._inline_limit * (
                1 + len(statements) / ROUTINE_BATCH
            )

    def _apply_batch(
        self, statements: list[Statement]
    ) -> tuple[bool, list[int | BaseException]]:
        db = self._db
        assert db is not None
        outcomes: list[int | BaseException] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            for sql, params in statements:
                try:
                    outcomes.append(db.execute(sql, params).rowcount)
                except sqlite3.OperationalError:
                    raise  # full, I/O error, busy: the whole batch is retried as one
                except Exception as exc:  # a bad row (constraint, bad value) loses no other
                    if not db.in_transaction:
                        raise
                    log.error("journal row refused: %s (%s)", exc, sql.split("(")[0])
                    outcomes.append(exc)
            db.execute("COMMIT")
        except Exception:
            log.exception("journal commit failed; the batch will be retried")
            if db.in_transaction:
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error:  # the connection is beyond use; the next BEGIN says so
                    log.exception("journal rollback failed")
            return False, []
        return True, outcomes


def _resolve(batch: list[Item], outcomes: list[Outcome]) -> None:
    for (_, done), outcome in zip(batch, outcomes, strict=True):
        if done is None:
            continue
        if not isinstance(done, asyncio.Future):
            try:
                done(outcome)
            except Exception:  # one waiter's bug must not keep the others waiting
                log.exception("a journal write's callback failed")
            continue
        if done.done():
            continue
        if isinstance(outcome, BaseException):
            done.set_exception(outcome)
        else:
            done.set_result(outcome)
