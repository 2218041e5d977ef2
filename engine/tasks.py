"""Long-lived background tasks that come back if they die of an unexpected exception."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
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
