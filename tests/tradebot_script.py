"""Running the installed `tradebot` script as a user types it, with only the settings a test
gives (the environment's and any .env's tradebot settings are left out)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# The console script pip installed next to the interpreter running the tests (.venv/bin).
TRADEBOT = Path(sys.executable).parent / "tradebot"

_SETTING_PREFIXES = ("IB_", "TELEGRAM_", "SIM_", "MAX_", "ALERT_")
_SETTINGS = {
    "SYMBOLS", "STRATEGY", "STRATEGY_PARAMS", "TRADING_MODE", "BAR_SIZE", "DB_PATH", "LOG_DIR",
    "LOG_LEVEL", "ORDER_QUANTITY", "HEALTH_PORT", "CANCEL_ORDERS_ON_EXIT", "NOTIFY_SOCKET",
    "WATCHDOG_USEC", "WATCHDOG_PID", "DISPLAY_TZ", "DAILY_SUMMARY_TIME", "STOP_LOSS_PCT",
    "TAKE_PROFIT_PCT", "OUTSIDE_RTH", "EQUITY_SNAPSHOT_MINUTES", "JOURNAL_RETENTION_DAYS",
    "GATEWAY_AWAY_ALERT_MINUTES",
}  # fmt: skip


def clean_env(**settings: str) -> dict[str, str]:
    """The test process's environment without tradebot settings, plus `settings`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not (key.startswith(_SETTING_PREFIXES) or key in _SETTINGS)
    }
    return {**env, **settings}


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def lines(self) -> list[str]:
        """The non-empty lines of stderr."""
        return [line for line in self.stderr.splitlines() if line.strip()]


def run_tradebot(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 20, prefix: tuple[str, ...] = ()
) -> Result:
    """Run `tradebot *args` to its end; a run longer than `timeout` fails the test
    (subprocess.TimeoutExpired). `prefix` runs it under another command (unshare, say)."""
    started = time.monotonic()
    completed = subprocess.run(
        [*prefix, str(TRADEBOT), *args],
        cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    return Result(
        completed.returncode, completed.stdout, completed.stderr, time.monotonic() - started
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def start_tradebot(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """Start `tradebot *args` in the background, stdout and stderr to files in `cwd`
    (`stdout.txt`, `stderr.txt`: a pipe nobody reads could fill and block the bot)."""
    return subprocess.Popen(
        [str(TRADEBOT), *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
        stdout=(cwd / "stdout.txt").open("w"), stderr=(cwd / "stderr.txt").open("w"), text=True,
    )  # fmt: skip


def wait_until(
    condition: Callable[[], object], process: subprocess.Popen[str], timeout: float, what: str
) -> None:
    """Poll `condition` until it holds; fail if `process` exits or `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"tradebot exited ({process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout:g}s")
        time.sleep(0.05)


def stop_tradebot(process: subprocess.Popen[str], timeout: float = 15) -> int:
    """SIGTERM, as systemd and Docker stop it; the exit code (killed after `timeout`)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
