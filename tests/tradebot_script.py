"""Running the installed `tradebot` script as a user types it, with only the settings a test
gives (the environment's and any .env's tradebot settings are left out)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# The console script pip installed next to the interpreter running the tests (.venv/bin).
TRADEBOT = Path(sys.executable).parent / "tradebot"

_SETTING_PREFIXES = ("IB_", "TELEGRAM_", "SIM_", "MAX_", "ALERT_")
_SETTINGS = {
    "SYMBOLS", "STRATEGY", "STRATEGY_PARAMS", "TRADING_MODE", "BAR_SIZE", "DB_PATH", "LOG_DIR",
    "LOG_LEVEL", "ORDER_QUANTITY", "DISPLAY_TZ", "DAILY_SUMMARY_TIME", "STOP_LOSS_PCT",
    "TAKE_PROFIT_PCT", "OUTSIDE_RTH", "EQUITY_SNAPSHOT_MINUTES", "JOURNAL_RETENTION_DAYS",
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
