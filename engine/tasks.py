"""Long-lived background tasks that come back if they die of an unexpected exception."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


class KeptAlive:
    """Runs `factory()` as a task named `name`; if the task ends with an exception (a bug, or
    an error nobody expected), logs it and starts a fresh one after `restart_delay` seconds.
    A task that returns normally is done. `stop()` cancels it for good."""

    def __init__(
        self,
        name: str,
        factory: Callable[[], Coroutine[Any, Any, None]],
        restart_delay: float = 1.0,
        on_death: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        self.name = name
        self.factory = factory
        self.restart_delay = restart_delay
        self.on_death = on_death  # told (name, exception) besides the log, e.g. to alert
        self.restarts = 0
        self.task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._stopped = False

    def start(self) -> None:
        """Start it (no-op while it runs)."""
        if self.running or self._timer is not None:
            return
        self._stopped = False
        self._spawn()

    def _spawn(self) -> None:
        self._timer = None
        if self._stopped:
            return
        self.task = asyncio.create_task(self.factory(), name=self.name)
        self.task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if self._stopped or task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        self.restarts += 1
        log.error(
            "%s died (%s); restarting it in %.1f s",
            self.name,
            type(error).__name__,
            self.restart_delay,
            exc_info=error,
        )
        if self.on_death is not None and error is not None:
            self.on_death(self.name, error)
        self._timer = asyncio.get_running_loop().call_later(self.restart_delay, self._spawn)

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    async def stop(self) -> None:
        """Cancel the task and any pending restart; never raises what the task raised."""
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task, self.task = self.task, None
        if task is None or task.done():  # a dead task was logged when it died
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception:  # it failed while being cancelled: say so, but finish stopping
            log.exception("%s failed while stopping", self.name)


class TaskOwner:
    """Owns every task a component starts: each is named, pruned when done, supervised (what
    it raises goes to `on_failure`), and ended by stop(). Four kinds:

    - kept alive: long-lived loops, restarted if they die (KeptAlive);
    - spawned: short work that stop() cancels;
    - aside: bookkeeping stop() lets finish (bounded), e.g. a journal write;
    - let finish: work that must not be cut in half (an order being sent), never cancelled.
    """

    def __init__(self, name: str, on_failure: Callable[[str, BaseException, bool], None]) -> None:
        self.name = name
        self._on_failure = on_failure  # (what, error, already logged)
        self._kept: list[KeptAlive] = []
        self._spawned: set[asyncio.Future[Any]] = set()
        self._aside: set[asyncio.Future[Any]] = set()
        self._unfinished: set[asyncio.Future[Any]] = set()

    def keep_alive(self, name: str, factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
        kept = KeptAlive(f"{self.name}:{name}", factory,
                         on_death=lambda what, error: self._on_failure(what, error, True))
        self._kept.append(kept)
        kept.start()

    def spawn(self, coroutine: Coroutine[Any, Any, Any], name: str) -> asyncio.Future[Any]:
        """Run short work that stop() cancels; its failure is reported, never silent."""
        return self._track(coroutine, name, self._spawned)

    def aside(
        self, coroutine: Coroutine[Any, Any, Any], name: str = "journaling"
    ) -> asyncio.Future[Any]:
        """Run bookkeeping beside the caller; stop() waits for it (bounded)."""
        return self._track(coroutine, name, self._aside)

    def let_finish(self, work: Awaitable[Any], name: str) -> None:
        """Run work that is never cancelled (an order being sent finishes its sending)."""
        self._track(work, name, self._unfinished)

    def _track(
        self, work: Awaitable[Any], name: str, into: set[asyncio.Future[Any]]
    ) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(work)
        if isinstance(task, asyncio.Task):
            task.set_name(f"{self.name}:{name}")
        into.add(task)
        task.add_done_callback(into.discard)
        self.supervise(task, name)
        return task

    def supervise(self, task: asyncio.Future[Any], name: str) -> None:
        def ended(task: asyncio.Future[Any]) -> None:
            if not task.cancelled() and task.exception() is not None:
                self._on_failure(name, task.exception(), False)  # type: ignore[arg-type]

        task.add_done_callback(ended)

    @property
    def count(self) -> int:
        """Tasks running now (kept-alive ones included)."""
        kept = sum(1 for k in self._kept if k.running)
        return kept + len(self._spawned) + len(self._aside) + len(self._unfinished)

    async def wait_aside(self, timeout: float) -> None:
        if self._aside:
            await asyncio.wait(set(self._aside), timeout=timeout)

    async def stop(self) -> None:
        """Stop the kept-alive loops and cancel the spawned work (the rest is left to end)."""
        for kept in self._kept:
            await kept.stop()
        tasks = list(self._spawned)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
