"""The progress bar: on a terminal after a second, never elsewhere."""

from __future__ import annotations

import io

from bot.progress import ProgressBar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_drawn_on_a_terminal_once_a_second_has_passed() -> None:
    now = [0.0]
    stream = Terminal()
    bar = ProgressBar(1000, stream=stream, clock=lambda: now[0])
    bar(100)
    assert stream.getvalue() == ""  # a short run shows nothing
    now[0] = 2.0
    bar(500)
    assert "50%" in stream.getvalue() and "500/1,000 bars" in stream.getvalue()
    bar.close()
    assert stream.getvalue().endswith("\r\x1b[K")


def test_quiet_when_not_a_terminal() -> None:
    now = [0.0]
    stream = io.StringIO()
    bar = ProgressBar(1000, stream=stream, clock=lambda: now[0])
    now[0] = 5.0
    bar(500)
    bar.close()
    assert stream.getvalue() == ""
