"""Journal writes in the order they were asked for, many to a transaction, off the hot path.

Broker callbacks are synchronous, so they hand their writes to this writer. The writer takes
everything queued, runs it in one transaction and commits once (one fsync for a burst of
fills instead of one each). `write_durable` returns only after the commit that holds its
write: the order intent is written that way before placeOrder goes out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from engine.journal import Journal

log = logging.getLogger(__name__)

Write = Callable[[], Awaitable[object]]

MAX_BATCH = 256


class JournalWriter:
    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._queue: asyncio.Queue[tuple[Write, asyncio.Future[None] | None] | None] = (
            asyncio.Queue()
        )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="journal-writer")

    def write(self, make: Write) -> None:
        """Queue a write; it reaches the disk with the next commit."""
        self._queue.put_nowait((make, None))

    async def write_durable(self, make: Write) -> None:
        """Queue a write and wait until it is committed; its error, if any, is raised here."""
        if self._task is None or self._task.done():
            await make()  # not running (start-up, shutdown): the journal autocommits
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((make, done))
        await done

    async def flush(self) -> None:
        """Wait until every write asked for so far is committed."""

        async def nothing() -> None:
            return None

        await self.write_durable(nothing)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._queue.put_nowait(None)
        await self._task
        self._task = None

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            stopping = None in batch
            items = [item for item in batch if item is not None]
            if items:
                await self._commit(items)

    async def _commit(self, items: list[tuple[Write, asyncio.Future[None] | None]]) -> None:
        outcomes: list[BaseException | None] = []
        await self._journal.begin()
        for make, _ in items:
            try:
                await make()
                outcomes.append(None)
            except Exception as exc:  # one failed write must not lose the others
                log.exception("journal write failed")
                outcomes.append(exc)
        try:
            await self._journal.commit()
        except Exception as exc:
            log.exception("journal commit failed")
            outcomes = [exc] * len(items)
        for (_, done), outcome in zip(items, outcomes, strict=True):
            if done is None or done.done():
                continue
            if outcome is None:
                done.set_result(None)
            else:
                done.set_exception(outcome)
