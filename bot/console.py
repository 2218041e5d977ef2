"""The console front-end: alerts printed as plain text, and commands typed on stdin.

Used when no Telegram token is configured. It answers through the same `bot.commands` as the
Telegram bot (one implementation, two transports); /flatten and /cancelall ask y/N.
Stdin is read by a daemon thread, so a pending readline never holds up shutdown. A command
that fails prints an error line; the console keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from datetime import time as dtime
from typing import TextIO
from zoneinfo import ZoneInfo

from bot.alerts import Alert, AlertPump
from bot.commands import ACTION_GRACE, Commands, Confirm, Photo, Reply
from bot.messages.document import to_plain
from bot.messages.kill_switch import cancelled_doc, confirm_doc, expired_doc
from bot.messages.status import error_doc
from engine.control import ControlAPI
from engine.errors import ConfigurationError

log = logging.getLogger(__name__)

_YES = {"y", "yes"}


class ConsoleFrontEnd:
    """control: the engine's ControlAPI. input/output default to stdin/stdout; commands are
    read only when `interactive` (default: stdin is a TTY)."""

    def __init__(
        self,
        control: ControlAPI,
        *,
        alert_levels: Mapping[str, str] | None = None,
        display_tz: ZoneInfo | None = None,
        daily_summary_time: dtime | None = None,
        input: TextIO | None = None,
        output: TextIO | None = None,
        interactive: bool | None = None,
        confirm_ttl: float = 60.0,
        action_grace: float = ACTION_GRACE,
    ) -> None:
        self.control = control
        self.tz = display_tz or ZoneInfo("UTC")
        self.input = input if input is not None else sys.stdin
        self.output = output if output is not None else sys.stdout
        self.interactive = self.input.isatty() if interactive is None else interactive
        self.confirm_ttl = confirm_ttl
        self.action_grace = action_grace
        self.commands = Commands(control, self.tz)
        self.pump = AlertPump(control, self._print_alert, alert_levels, self.tz, daily_summary_time)
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._no_action = asyncio.Event()  # clear while a confirmed action runs
        self._no_action.set()

    async def start(self) -> None:
        await self.pump.start()
        if self.interactive:
            loop = asyncio.get_running_loop()
            threading.Thread(target=self._read, args=(loop,), daemon=True, name="console").start()
            self._task = asyncio.create_task(self._serve(), name="console:commands")
            self._write("console ready: type /help")

    async def stop_intake(self) -> None:
        """Stop reading commands; a confirmed action that is running may finish (bounded)."""
        task, self._task = self._task, None
        if task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._no_action.wait(), self.action_grace)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def wait_failed(self) -> ConfigurationError:
        """The console cannot fail the way a refused Telegram token does: waits forever."""
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def stop(self) -> None:
        await self.stop_intake()
        await self.pump.stop()
        await self.commands.close()

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        for line in self.input:
            if not self._put(loop, line):
                return
        self._put(loop, None)

    def _put(self, loop: asyncio.AbstractEventLoop, line: str | None) -> bool:
        try:
            loop.call_soon_threadsafe(self._lines.put_nowait, line)
        except RuntimeError:  # the loop is closed: we are shutting down
            return False
        return True

    async def _serve(self) -> None:
        while (line := await self._lines.get()) is not None:
            if not line.strip():
                continue
            try:
                await self.handle(line)
            except Exception as exc:  # one failed command must not end the console
                log.exception("console command %r failed", line.strip())
                self._write(
                    to_plain(error_doc(f"failed: {type(exc).__name__}: {exc}"), self.control.mode)
                )

    async def handle(self, line: str) -> None:
        """Run one command line and print the answer."""
        result = await self.commands.execute(line, by="console")
        match result:
            case Reply(doc=doc):
                self._write(to_plain(doc, self.control.mode))
            case Photo(png=png, caption=caption):
                with tempfile.NamedTemporaryFile(prefix="chart-", suffix=".png", delete=False) as f:
                    f.write(png)
                self._write(to_plain(caption, self.control.mode) + f"\n  saved to {f.name}")
            case Confirm():
                await self._confirm(result)

    async def _confirm(self, confirm: Confirm) -> None:
        prompt = confirm_doc(confirm.action, confirm.question, self.confirm_ttl)
        self._write(to_plain(prompt, self.control.mode) + "\n  [y/N] ", end="")
        asked = time.monotonic()
        try:
            answer = await asyncio.wait_for(self._lines.get(), self.confirm_ttl)
        except TimeoutError:
            answer = ""
        if time.monotonic() - asked > self.confirm_ttl:
            self._write(to_plain(expired_doc(confirm.action), self.control.mode))
            return
        if (answer or "").strip().lower() not in _YES:
            self._write(to_plain(cancelled_doc(confirm.action), self.control.mode))
            return

        async def progress(line: str) -> None:
            self._write(f"  … {line}")

        self._write(f"{confirm.working}…")
        self._no_action.clear()
        try:
            doc = await confirm.run(progress, "console")
        except Exception as exc:  # the kill switch failing must be loud
            log.exception("%s failed", confirm.action)
            doc = error_doc(f"{confirm.action} FAILED: {type(exc).__name__}: {exc}")
        finally:
            self._no_action.set()
        self._write(to_plain(doc, self.control.mode))

    async def _print_alert(self, alert: Alert) -> None:
        when = alert.time.astimezone(self.tz).strftime("%H:%M:%S")
        self._write(f"{when} {to_plain(alert.doc, self.control.mode)}")

    def _write(self, text: str, end: str = "\n") -> None:
        self.output.write(text + end)
        self.output.flush()
