"""Logs as a VPS runs the bot (issue 10, item 1): LOG_DIR empty writes no file, stderr is the log
(journald, Docker); with a log file, ib_async's connection errors stay off the console."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.tradebot_script import clean_env, start_tradebot, stop_tradebot, wait_until


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_empty_log_dir_writes_no_file(tmp_path: Path) -> None:
    env = clean_env(DB_PATH=str(tmp_path / "journal.sqlite3"), LOG_DIR="")
    process = start_tradebot("run", cwd=tmp_path, env=env)
    stderr = tmp_path / "stderr.txt"
    wait_until(lambda: "simulated gateway on 127.0.0.1" in stderr.read_text(), process, 20,
               "the log line of the simulated gateway on stderr")  # fmt: skip
    assert stop_tradebot(process) == 0, stderr.read_text()
    assert not list(tmp_path.rglob("tradebot.log"))
    assert not (tmp_path / "logs").exists()
    assert "Traceback" not in stderr.read_text()


def test_connection_errors_go_to_the_log_file_only(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    env = clean_env(
        DB_PATH=str(tmp_path / "journal.sqlite3"), LOG_DIR=str(logs),
        IB_HOST="127.0.0.1", IB_PORT=str(_closed_port()),
    )  # fmt: skip
    process = start_tradebot("run", cwd=tmp_path, env=env)
    log_file = logs / "tradebot.log"

    def refused_twice() -> bool:
        return log_file.exists() and log_file.read_text().count("Make sure API port") >= 2

    wait_until(refused_twice, process, 20, "two refused connects in the log file")
    assert stop_tradebot(process) == 0
    console = (tmp_path / "stderr.txt").read_text()
    assert "cannot connect to 127.0.0.1" in console  # the bot's own line says it
    for noise in ("Make sure API port", "API connection failed"):
        assert noise not in console
        assert noise in log_file.read_text()
