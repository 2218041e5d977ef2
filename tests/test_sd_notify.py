"""systemd's notify protocol (issue 10, item 2): READY=1, WATCHDOG=1 while alive, STOPPING=1,
through the real `tradebot run` on the embedded simulated gateway and a real unix datagram
socket; and what "alive" means."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.health import RECONNECT_BOUND, alive_problem
from bot.sd_notify import Notifier, socket_address, watchdog_interval
from tests.tradebot_script import clean_env, start_tradebot, stop_tradebot, wait_until


class Listener:
    """A bound unix datagram socket, as systemd's notify socket, collecting messages."""

    def __init__(self, address: str | bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.setblocking(False)
        self.messages: list[str] = []

    def read(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return self.messages

    def has(self, text: str) -> bool:
        return any(text in message.split("\n") for message in self.read())


@pytest.fixture
def notify_path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "notify.sock"
    if len(str(path)) >= 100:  # sun_path holds 108 bytes
        with tempfile.TemporaryDirectory(prefix="tb") as short:
            yield Path(short) / "notify.sock"
        return
    yield path


def test_notify_through_the_real_run(tmp_path: Path, notify_path: Path) -> None:
    listener = Listener(str(notify_path))
    env = clean_env(
        DB_PATH=str(tmp_path / "journal.sqlite3"), LOG_DIR="", SIM_SPEED="600",
        NOTIFY_SOCKET=str(notify_path), WATCHDOG_USEC="400000",
    )  # fmt: skip
    process = start_tradebot("run", cwd=tmp_path, env=env)
    try:
        wait_until(lambda: listener.has("READY=1"), process, 30, "READY=1")
        ready_at = len(listener.read())
        wait_until(lambda: listener.read()[ready_at:].count("WATCHDOG=1") >= 5, process, 10,
                   "five watchdog pings after READY=1")  # fmt: skip
    finally:
        code = stop_tradebot(process)
    assert code == 0, (tmp_path / "stderr.txt").read_text()
    messages = listener.read()
    assert messages[0] == "STATUS=connecting to the gateway"
    assert [m for m in messages if "READY=1" in m] == ["READY=1\nSTATUS=trading"]
    assert messages.index("READY=1\nSTATUS=trading") < messages.index(
        "STOPPING=1\nSTATUS=shutting down")
    pings = [m for m in messages if m == "WATCHDOG=1"]
    assert len(pings) >= 5


def test_abstract_socket_and_no_watchdog(tmp_path: Path) -> None:
    name = f"@tradebot-test-{os.getpid()}-{time.monotonic_ns()}"
    listener = Listener(socket_address(name))
    env = clean_env(DB_PATH=str(tmp_path / "journal.sqlite3"), LOG_DIR="", NOTIFY_SOCKET=name)
    process = start_tradebot("run", cwd=tmp_path, env=env)
    try:
        wait_until(lambda: listener.has("READY=1"), process, 30, "READY=1")
    finally:
        assert stop_tradebot(process) == 0
    messages = listener.read()
    assert "WATCHDOG=1" not in messages  # no WATCHDOG_USEC: no pings
    assert messages[-1] == "STOPPING=1\nSTATUS=shutting down"


def test_nothing_without_notify_socket() -> None:
    notifier = Notifier({"WATCHDOG_USEC": "1000000"})
    assert not notifier.enabled and notifier.interval is None
    notifier.send("READY=1")  # no socket, no error


def test_watchdog_interval() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    pid = str(os.getpid())
    assert watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": pid}) == 1.0
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({}) is None


async def test_no_ping_while_stuck_then_pings_while_stopping(notify_path: Path) -> None:
    listener = Listener(str(notify_path))
    notifier = Notifier({"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "40000"})
    problem: list[str | None] = ["no connect attempt for 130s"]
    notifier.start(asyncio.Event(), lambda: problem[0])
    await asyncio.sleep(0.2)
    assert "WATCHDOG=1" not in listener.read()
    assert "STATUS=stuck: no connect attempt for 130s" in listener.read()
    notifier.stopping()
    await asyncio.sleep(0.1)
    await notifier.close()
    after = listener.read()[listener.read().index("STOPPING=1\nSTATUS=shutting down"):]
    assert "WATCHDOG=1" in after
    assert "READY=1\nSTATUS=trading" not in listener.read()


def _engine(connected: bool, lags: list[float] | None = None, fatal: object = None,
            started: float = 0.0) -> SimpleNamespace:  # fmt: skip
    return SimpleNamespace(
        fatal=fatal, loop_lag_samples=lags or [0.001], started_wall=started,
        broker=SimpleNamespace(is_connected=connected),
    )


@pytest.mark.parametrize(
    ("engine", "last_attempt", "now", "problem"),
    [
        (_engine(True), None, 1000.0, None),
        (_engine(False), 990.0, 1000.0, None),  # reconnecting
        (_engine(False), None, 100.0, None),  # still starting
        (_engine(False), 1000.0 - RECONNECT_BOUND - 1, 1000.0, "no connect attempt for 121s"),
        (_engine(True, lags=[6.0] * 10), None, 1.0, "event loop lag p99 6.0s"),
        (_engine(True, fatal="IB_CLIENT_ID in use"), None, 1.0, "stopped: IB_CLIENT_ID in use"),
    ],
)
def test_alive(engine: SimpleNamespace, last_attempt: float | None, now: float,
               problem: str | None) -> None:  # fmt: skip
    assert alive_problem(engine, last_attempt, now) == problem  # type: ignore[arg-type]
