"""systemd's notify protocol without a dependency: one datagram per message to $NOTIFY_SOCKET.

READY=1 once the engine is connected, reconciled and warmed up; WATCHDOG=1 every
WATCHDOG_USEC/2 while the process is alive (`bot.health.alive_problem`); STOPPING=1 at shutdown.
With NOTIFY_SOCKET unset (not under systemd, or Type= not notify) nothing is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

AliveCheck = Callable[[], str | None]  # why the process is stuck, or None


def socket_address(value: str) -> str | bytes:
    """NOTIFY_SOCKET as `sendto` takes it: a path, or "@name" for the abstract namespace."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


def watchdog_interval(environ: Mapping[str, str]) -> float | None:
    """Seconds between pings (half of WATCHDOG_USEC), or None when no watchdog is asked for
    (or it is meant for another process: WATCHDOG_PID)."""
    pid = environ.get("WATCHDOG_PID", "").strip()
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 2_000_000 if usec > 0 else None


class Notifier:
    """Talks to systemd for one run; every method is a no-op without NOTIFY_SOCKET."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        value = environ.get("NOTIFY_SOCKET", "")
        self.address = socket_address(value) if value else None
        self.interval = watchdog_interval(environ) if value else None
        self._socket: socket.socket | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._ready_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._failed = False
        self.last_problem: str | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, message: str) -> None:
        """One datagram; a failure is logged once and never stops the bot."""
        if self.address is None:
            return
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._socket.setblocking(False)
            self._socket.sendto(message.encode(), self.address)
        except OSError as exc:
            if not self._failed:
                log.warning("cannot notify systemd at NOTIFY_SOCKET (%s)", exc)
            self._failed = True
        else:
            self._failed = False

    def start(self, ready: asyncio.Event, alive: AliveCheck) -> None:
        """Say READY=1 when `ready` is set, and feed the watchdog while `alive()` is None."""
        if not self.enabled:
            return
        self.send("STATUS=connecting to the gateway")
        self._ready_task = asyncio.create_task(self._tell_ready(ready), name="sd_notify:ready")
        self._tasks.append(self._ready_task)
        if self.interval is not None:
            self._tasks.append(asyncio.create_task(self._feed(alive), name="sd_notify:watchdog"))

    async def _tell_ready(self, ready: asyncio.Event) -> None:
        await ready.wait()
        self.send("READY=1\nSTATUS=trading")

    async def _feed(self, alive: AliveCheck) -> None:
        assert self.interval is not None
        while True:
            # Once stopping, the shutdown is bounded (TimeoutStopSec covers it): a long
            # flatten at shutdown must not be taken for a hang.
            problem = None if self._stopping else alive()
            if problem is None:
                self.send("WATCHDOG=1")
            elif problem != self.last_problem:
                log.error("not feeding systemd's watchdog: %s", problem)
                self.send(f"STATUS=stuck: {problem}")
            self.last_problem = problem
            await asyncio.sleep(self.interval)

    def stopping(self) -> None:
        """STOPPING=1 (and READY=1 is no longer said if it was not yet)."""
        self._stopping = True
        if self._ready_task is not None:
            self._ready_task.cancel()
        self.send("STOPPING=1\nSTATUS=shutting down")

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._socket is not None:
            self._socket.close()
            self._socket = None

