"""The console front-end: the same commands as Telegram, alerts as plain text, y/N confirms."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterator

import pytest

from bot.console import ConsoleFrontEnd
from tests.bot.fake_control import FakeControl
from tests.bot.test_telegram_alerts import fill_event


class Screen(io.StringIO):
    """Console output that can be awaited: `changed` is set on every write."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()

    def write(self, text: str) -> int:
        written = super().write(text)
        self.changed.set()
        return written


class Terminal:
    """A pipe for typed lines and a buffer that can be awaited for output."""

    def __init__(self) -> None:
        read_fd, self._write_fd = os.pipe()
        self.input = os.fdopen(read_fd, "r")
        self.output = Screen()

    def type(self, line: str) -> None:
        os.write(self._write_fd, (line + "\n").encode())

    async def expect(self, needle: str, timeout: float = 5.0) -> str:
        async with asyncio.timeout(timeout):
            while True:
                self.output.changed.clear()
                if needle in self.output.getvalue():
                    return self.output.getvalue()
                await self.output.changed.wait()

    def close(self) -> None:
        os.close(self._write_fd)


@pytest.fixture
async def console(control: FakeControl) -> AsyncIterator[tuple[ConsoleFrontEnd, Terminal]]:
    terminal = Terminal()
    front_end = ConsoleFrontEnd(
        control, input=terminal.input, output=terminal.output, interactive=True
    )
    await front_end.start()
    yield front_end, terminal
    terminal.close()
    await front_end.stop()


async def test_console_answers_commands(
    console: tuple[ConsoleFrontEnd, Terminal], control: FakeControl
) -> None:
    _, terminal = console
    terminal.type("/status")
    out = await terminal.expect("Status: RUNNING")
    assert "[SIM]" in out and "<b>" not in out
    terminal.type("positions")
    await terminal.expect("Positions: 2")
    terminal.type("/quote ZZZZ")
    await terminal.expect("Unknown symbol ZZZZ")


async def test_console_flatten_asks_y_n(
    console: tuple[ConsoleFrontEnd, Terminal], control: FakeControl
) -> None:
    _, terminal = console
    terminal.type("/flatten")
    await terminal.expect("[y/N]")
    terminal.type("n")
    await terminal.expect("cancelled, nothing was done")
    assert control.called("flatten") == []
    terminal.type("/flatten")
    terminal.type("y")
    await terminal.expect("flat (bot): closed AAPL 10, MSFT 20")
    assert control.called("flatten") == [("console", "bot")]


async def test_console_prints_alerts(
    console: tuple[ConsoleFrontEnd, Terminal], control: FakeControl
) -> None:
    _, terminal = console
    control.publish(fill_event(symbol="<A&B>"))
    out = await terminal.expect("Filled: BUY 10 <A&B>")
    assert "&lt;" not in out


async def test_console_without_a_tty_only_prints(control: FakeControl) -> None:
    output = io.StringIO()
    front_end = ConsoleFrontEnd(control, input=io.StringIO("/flatten\ny\n"), output=output)
    await front_end.start()
    control.publish(fill_event())
    await front_end.stop()  # drains pending alerts
    assert "Filled" in output.getvalue()
    assert control.called("flatten") == []


async def test_a_failing_flatten_does_not_end_the_console(
    console: tuple[ConsoleFrontEnd, Terminal], control: FakeControl
) -> None:
    _, terminal = console
    control.flatten_error = ConnectionError("broker went away")
    terminal.type("/flatten")
    terminal.type("y")
    await terminal.expect("flatten FAILED: ConnectionError: broker went away")
    terminal.type("/status")
    await terminal.expect("Status: RUNNING")


async def test_console_stop_lets_a_running_flatten_finish(control: FakeControl) -> None:
    terminal = Terminal()
    front_end = ConsoleFrontEnd(
        control, input=terminal.input, output=terminal.output, interactive=True
    )
    await front_end.start()
    control.flatten_delay = 0.1
    terminal.type("/flatten")
    terminal.type("y")
    await asyncio.wait_for(control.flatten_started.wait(), 5)
    await front_end.stop_intake()
    assert control.flatten_finished.is_set()
    await terminal.expect("flat (bot): closed AAPL 10, MSFT 20")
    terminal.close()
    await front_end.stop()
