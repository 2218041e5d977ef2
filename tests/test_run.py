"""`tradebot run` as a user runs it: simulated gateway, console alerts, the journal's retention,
SIGTERM exits 0 fast."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.journal_rows import MIGRATIONS, SCHEMA_VERSION, event_stmt
from ibsim import SimGateway


async def test_run_trades_on_the_simulator_and_stops_cleanly(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SIM_SPEED": "600",
        "BAR_SIZE": "5 secs",
        "STRATEGY_PARAMS": "fast=2,slow=4",
        "MAX_ORDERS_PER_MINUTE": "1000",
        "DB_PATH": str(tmp_path / "journal.sqlite3"),
        "LOG_DIR": str(tmp_path / "logs"),
        "JOURNAL_RETENTION_DAYS": "30",
    }
    _journal_with_old_events(tmp_path / "journal.sqlite3")
    process = await _tradebot_run(tmp_path, env)
    seen: list[str] = []
    try:
        await asyncio.wait_for(_read_until(process, seen, "SIMULATED GATEWAY"), 20)
        await asyncio.wait_for(_read_until(process, seen, "Filled"), 30)
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
    with sqlite3.connect(tmp_path / "journal.sqlite3") as db:
        old = db.execute("SELECT kind FROM events WHERE message = 'old'").fetchall()
        pruned = db.execute("SELECT message FROM events WHERE kind = 'prune'").fetchall()
    db.close()
    assert old == [("command",)]
    assert pruned == [("pruned 1 routine event(s) and 0 delivered alert(s) older than 30 day(s)",)]
    # The journal was upgraded from schema 1, after a copy of it was made.
    assert (tmp_path / f"journal.sqlite3.before-v{SCHEMA_VERSION}.sqlite3").is_file()


def _journal_with_old_events(path: Path) -> None:
    """A journal written by the first tradebot, with a routine event and a command 31 days old."""
    at = datetime.now(UTC) - timedelta(days=31)
    with sqlite3.connect(path) as db:
        db.executescript(MIGRATIONS[0] + "\nPRAGMA user_version = 1;")
        db.execute(*event_stmt("warning", "gap", "old", None, at))
        db.execute(*event_stmt("info", "command", "old", None, at))
    db.close()


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


async def test_run_with_an_option_only_starts_the_simulator_with_its_underlying(
    tmp_path: Path,
) -> None:
    """SYMBOLS naming only an option: the built-in gateway lists its underlying (and so its
    chain), and the bot trades the option, not a made-up stock of the option's name."""
    async with SimGateway(seed=1, symbols=["MSFT"]) as gateway:
        chain = gateway.universe.option_chain(gateway.spec("MSFT").con_id)
        spec = chain[len(chain) // 2]
    option = f"MSFT:OPT:{spec.last_trade_date}:{spec.strike:g}:{spec.right}"
    env = {**os.environ, "SYMBOLS": option, "DB_PATH": str(tmp_path / "journal.sqlite3"),
           "LOG_DIR": ""}
    process = await _tradebot_run(tmp_path, env)
    seen: list[str] = []
    try:
        await asyncio.wait_for(_read_until(process, seen, "Started"), 30)
        await asyncio.wait_for(_read_until(process, seen, "symbols:"), 5)
    finally:
        process.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(process.communicate(), 10)
    output = "".join(seen) + rest.decode()
    assert await process.wait() == 0, output
    assert "does not know" not in output and "Traceback" not in output, output


async def _tradebot_run(cwd: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    """`tradebot run` as a user starts it, its output (stdout and stderr) on a pipe."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run",
        cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )


async def _read_until(process: asyncio.subprocess.Process, seen: list[str], marker: str) -> None:
    """Read its lines into `seen` until one holds `marker`; it must not exit first."""
    assert process.stdout is not None
    while True:
        line = (await process.stdout.readline()).decode()
        assert line, "tradebot exited early:\n" + "".join(seen)
        seen.append(line)
        if marker in line:
            return
