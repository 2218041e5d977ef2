"""Journal retention while `tradebot run` runs: a prune at start, then one a day, in the
background (the rows and the batches are engine/journal_maintenance.py's business)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import timedelta

from bot.tasks import KeptAlive
from engine.journal import Journal
from engine.journal_maintenance import PruneResult

log = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 24 * 3600.0
# A prune that died of a bug is tried again after this long, not at once and not in a loop.
RESTART_SECONDS = 3600.0


class JournalUpkeep:
    """Prunes `journal` of what is older than `retention`, now and every `every` seconds."""

    def __init__(
        self, journal: Journal, retention: timedelta, every: float = PRUNE_EVERY_SECONDS
    ) -> None:
        self.journal = journal
        self.retention = retention
        self.every = every
        self.last: PruneResult | None = None  # what the last prune deleted
        self._task = KeptAlive("journal:prune", self._run, RESTART_SECONDS)

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        """Stop before the journal closes; a batch under way is committed or not, never half."""
        await self._task.stop()

    async def prune_once(self) -> PruneResult | None:
        """One prune; a database that cannot be written now (full disk, locked) is logged and
        tried again at the next one."""
        try:
            result = await self.journal.prune(self.retention)
            self.last = result
            if result.rows:
                await self._journal_it(result)
        except sqlite3.Error as exc:
            log.error("journal prune failed (%s); trying again in %s", exc,
                      timedelta(seconds=self.every))
            return None
        return result

    async def _journal_it(self, result: PruneResult) -> None:
        events, outbox = sum(result.events), sum(result.outbox)
        message = (
            f"pruned {events} routine event(s) and {outbox} delivered alert(s) older than "
            f"{self.retention.days} day(s)"
        )
        log.info("journal %s", message)
        await self.journal.log_event(
            "info", "prune", message,
            {"events": events, "outbox": outbox,
             "batches": len(result.events) + len(result.outbox)},
        )  # fmt: skip

    async def _run(self) -> None:
        while True:
            await self.prune_once()
            await asyncio.sleep(self.every)
