"""The console front-end: alerts printed as plain text, and commands typed on stdin.

Used when no Telegram token is configured. It answers through the same `bot.commands` as the
Telegram bot (one implementation, two transports); /flatten and /cancelall ask y/N.
Stdin is read by a daemon thread, so a pending readline never holds up shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from datetime import time as dtime
from typing import TextIO
from zoneinfo import ZoneInfo

from bot import format as fmt
from bot.alerts import Alert, AlertPump
from bot.commands import Commands, Confirm, Photo, Reply
from engine.control import ControlAPI

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
    ) -> None:
        self.control = control
        self.tz = display_tz or ZoneInfo("UTC")
        self.input = input if input is not None else sys.stdin
        self.output = output if output is not None else sys.stdout
        self.interactive = self.input.isatty() if interactive is None else interactive
        self.confirm_ttl = confirm_ttl
        self.commands = Commands(control, self.tz)
        self.pump = AlertPump(control, self._print_alert, alert_levels, self.tz, daily_summary_time)
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.pump.start()
        if self.interactive:
            loop = asyncio.get_running_loop()
            threading.Thread(target=self._read, args=(loop,), daemon=True, name="console").start()
            self._task = asyncio.create_task(self._serve(), name="console:commands")
            self._write("console ready: type /help")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.pump.stop()

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
            if line.strip():
                await self.handle(line)

    async def handle(self, line: str) -> None:
        """Run one command line and print the answer."""
        result = await self.commands.execute(line, by="console")
        match result:
            case Reply(doc=doc):
                self._write(fmt.to_plain(doc, self.control.mode))
            case Photo(png=png, caption=caption):
                with tempfile.NamedTemporaryFile(prefix="chart-", suffix=".png", delete=False) as f:
                    f.write(png)
                self._write(fmt.to_plain(caption, self.control.mode) + f"\n  saved to {f.name}")
            case Confirm():
                await self._confirm(result)

    async def _confirm(self, confirm: Confirm) -> None:
        prompt = fmt.confirm_doc(confirm.action, confirm.question, self.confirm_ttl)
        self._write(fmt.to_plain(prompt, self.control.mode) + "\n  [y/N] ", end="")
        asked = time.monotonic()
        try:
            answer = await asyncio.wait_for(self._lines.get(), self.confirm_ttl)
        except TimeoutError:
            answer = ""
        if time.monotonic() - asked > self.confirm_ttl:
            self._write(fmt.to_plain(fmt.expired_doc(confirm.action), self.control.mode))
            return
        if (answer or "").strip().lower() not in _YES:
            self._write(fmt.to_plain(fmt.cancelled_doc(confirm.action), self.control.mode))
            return

        async def progress(line: str) -> None:
            self._write(f"  … {line}")

        self._write(f"{confirm.working}…")
        self._write(fmt.to_plain(await confirm.run(progress), self.control.mode))

    async def _print_alert(self, alert: Alert) -> None:
        when = alert.time.astimezone(self.tz).strftime("%H:%M:%S")
        self._write(f"{when} {fmt.to_plain(alert.doc, self.control.mode)}")

    def _write(self, text: str, end: str = "\n") -> None:
        self.output.write(text + end)
        self.output.flush()
