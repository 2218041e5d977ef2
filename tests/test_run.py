"""`tradebot run` as a user runs it: simulated gateway, console alerts, SIGTERM exits 0 fast."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


async def test_run_trades_on_the_simulator_and_stops_cleanly(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SIM_SPEED": "600",
        "BAR_SIZE": "5 secs",
        "STRATEGY_PARAMS": "fast=2,slow=4",
        "MAX_ORDERS_PER_MINUTE": "1000",
        "DB_PATH": str(tmp_path / "journal.sqlite3"),
        "LOG_DIR": str(tmp_path / "logs"),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run",
        cwd=tmp_path, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    seen: list[str] = []

    async def read_until(marker: str) -> None:
        assert process.stdout is not None
        while True:
            line = (await process.stdout.readline()).decode()
            assert line, "tradebot exited early:\n" + "".join(seen)
            seen.append(line)
            if marker in line:
                return

    try:
        await asyncio.wait_for(read_until("SIMULATED GATEWAY"), 20)
        await asyncio.wait_for(read_until("Filled"), 30)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.stdout is not None
        rest, _ = await asyncio.wait_for(process.communicate(), 10)
        assert await process.wait() == 0, "".join(seen) + rest.decode()
        assert time.monotonic() - started < 5
        assert "Traceback" not in "".join(seen) + rest.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert (tmp_path / "logs" / "tradebot.log").exists()


def test_sigterm_during_start_up_exits_0(tmp_path: Path) -> None:
    """A SIGTERM as soon as the log file exists (the lock is held, the gateway and the engine
    not yet up): exit 0 without a traceback, not 143."""
    env = {
        **os.environ,
        "DB_PATH": str(tmp_path / "journal.sqlite3"),
        "LOG_DIR": str(tmp_path / "logs"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run"], cwd=tmp_path, env=env,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "logs" / "tradebot.log").exists():
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.005)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
    finally:
        if process.returncode is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output.decode()
    assert "Traceback" not in output.decode()
