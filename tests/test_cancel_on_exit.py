"""CANCEL_ORDERS_ON_EXIT (issue 10, item 5): at SIGTERM the bot's working orders are cancelled
before the journal is flushed, through the real `tradebot run` on the simulated gateway; the
shutdown stays bounded. Off by default: the orders stay working at the broker."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tests.test_health import _free_port, _get, _metric
from tests.tradebot_script import clean_env, start_tradebot, stop_tradebot, wait_until

WORKING = ("PendingSubmit", "Submitted", "PartiallyFilled")


def _statuses(db: Path) -> list[str]:
    with sqlite3.connect(db) as journal:
        return [row[0] for row in journal.execute("SELECT status FROM orders")]


def _working(port: int) -> float:
    try:
        return _metric(_get(port, "/metrics")[2], "tradebot_orders_working")
    except OSError:
        return 0


@pytest.mark.parametrize("cancel", [True, False])
def test_cancel_orders_on_exit(tmp_path: Path, cancel: bool) -> None:
    port, db = _free_port(), tmp_path / "journal.sqlite3"
    env = clean_env(
        DB_PATH=str(db), LOG_DIR="", HEALTH_PORT=str(port), SIM_SPEED="600",
        BAR_SIZE="5 secs", STRATEGY_PARAMS="fast=2,slow=4", MAX_ORDERS_PER_MINUTE="1000",
        STOP_LOSS_PCT="20", TAKE_PROFIT_PCT="20",  # brackets: their children stay working
        CANCEL_ORDERS_ON_EXIT=str(cancel).lower(),
    )  # fmt: skip
    process = start_tradebot("run", cwd=tmp_path, env=env)
    try:
        wait_until(lambda: _working(port) >= 2, process, 40, "protective orders working")
        started = time.monotonic()
    finally:
        code = stop_tradebot(process)
    stderr = (tmp_path / "stderr.txt").read_text()
    assert code == 0, stderr
    assert time.monotonic() - started < 15
    assert "Traceback" not in stderr
    statuses = _statuses(db)
    if cancel:
        assert "CANCEL_ORDERS_ON_EXIT:" in stderr and "0 left working" in stderr, stderr
        assert not [status for status in statuses if status in WORKING], statuses
        assert "Cancelled" in statuses
    else:
        assert "CANCEL_ORDERS_ON_EXIT" not in stderr
        assert [status for status in statuses if status in WORKING], statuses
