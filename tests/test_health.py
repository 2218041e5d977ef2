"""HEALTH_PORT (issue 10, item 3): /healthz and /metrics over real HTTP on 127.0.0.1, from the
real `tradebot run`; what "healthy" means, case by case."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.health import health_problem
from engine.domain import ConnectionState, EngineState
from tests.tradebot_script import (
    clean_env,
    run_tradebot,
    start_tradebot,
    stop_tradebot,
    wait_until,
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(port: int, path: str, method: str = "GET") -> tuple[int, str, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def _answers(port: int, path: str, status: int) -> bool:
    try:
        return _get(port, path)[0] == status
    except OSError:
        return False  # not listening yet


def _metric(text: str, line_start: str) -> float:
    (line,) = [line for line in text.splitlines() if line.startswith(line_start + " ")]
    return float(line.rsplit(" ", 1)[1])


def test_healthz_and_metrics_on_the_simulator(tmp_path: Path) -> None:
    port = _free_port()
    env = clean_env(
        DB_PATH=str(tmp_path / "journal.sqlite3"), LOG_DIR="", HEALTH_PORT=str(port),
        SIM_SPEED="600", BAR_SIZE="5 secs", STRATEGY_PARAMS="fast=2,slow=4",
        MAX_ORDERS_PER_MINUTE="1000",
    )  # fmt: skip
    process = start_tradebot("run", cwd=tmp_path, env=env)
    try:
        wait_until(lambda: _answers(port, "/healthz", 200), process, 30, "/healthz 200")
        assert _get(port, "/healthz") == (200, "text/plain; charset=utf-8", "ok\n")
        wait_until(lambda: _metric(_get(port, "/metrics")[2], "tradebot_fills_total") > 0,
                   process, 30, "a fill counted in /metrics")  # fmt: skip
        status, content_type, text = _get(port, "/metrics")
        assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
        for line, value in [
            ("tradebot_up", 1), ("tradebot_healthy", 1), ("tradebot_alive", 1),
            ("tradebot_ready", 1), ('tradebot_connection_state{state="connected"}', 1),
            ('tradebot_connection_state{state="disconnected"}', 0),
            ('tradebot_engine_state{state="RUNNING"}', 1), ("tradebot_disconnects_total", 0),
            ('tradebot_symbol_stale{symbol="AAPL"}', 0),
        ]:
            assert _metric(text, line) == value, line
        assert _metric(text, 'tradebot_orders{status="Filled"}') >= 1
        assert _metric(text, 'tradebot_loop_lag_seconds{quantile="0.99"}') < 1
        assert "# TYPE tradebot_fills_total counter" in text
        assert _get(port, "/nothing")[0] == 404
        assert _get(port, "/healthz", "POST")[0] == 405
        assert _get(port, "/healthz", "HEAD")[:2] == (200, "text/plain; charset=utf-8")
    finally:
        assert stop_tradebot(process) == 0, (tmp_path / "stderr.txt").read_text()


def test_healthz_is_503_while_the_gateway_is_away(tmp_path: Path) -> None:
    port = _free_port()
    env = clean_env(
        DB_PATH=str(tmp_path / "journal.sqlite3"), LOG_DIR="", HEALTH_PORT=str(port),
        IB_HOST="127.0.0.1", IB_PORT=str(_free_port()),
    )  # fmt: skip
    process = start_tradebot("run", cwd=tmp_path, env=env)
    try:
        wait_until(lambda: _answers(port, "/healthz", 503), process, 20, "/healthz 503")
        assert _get(port, "/healthz")[2] == "starting: not connected and set up yet\n"
        text = _get(port, "/metrics")[2]
        assert _metric(text, "tradebot_healthy") == 0
        assert _metric(text, "tradebot_alive") == 1  # reconnecting: systemd must not restart
        assert _metric(text, 'tradebot_connection_state{state="connected"}') == 0
    finally:
        assert stop_tradebot(process) == 0


def test_health_port_in_use_is_one_line_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = clean_env(DB_PATH=str(tmp_path / "journal.sqlite3"), LOG_DIR="",
                        HEALTH_PORT=str(port))  # fmt: skip
        result = run_tradebot("run", cwd=tmp_path, env=env, timeout=30)
    assert result.code == 2, result.stderr
    assert result.lines[-1] == (
        f"tradebot: HEALTH_PORT: cannot listen on 127.0.0.1:{port} (in use by another "
        "program); choose another port or leave HEALTH_PORT empty"
    )
    assert "Traceback" not in result.stderr


NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


class _Hours:
    def __init__(self, open_: bool) -> None:
        self.open = open_

    def is_open(self, now: datetime) -> bool:
        return self.open


def _engine(
    *,
    state: EngineState = EngineState.RUNNING,
    ready: bool = True,
    connection: ConnectionState = ConnectionState.CONNECTED,
    last_bar: datetime | None = NOW,
    market_open: bool = True,
) -> SimpleNamespace:
    hours = _Hours(market_open)
    return SimpleNamespace(
        risk=SimpleNamespace(state=state, pause_reason="daily loss limit"),
        ready=SimpleNamespace(is_set=lambda: ready),
        connection=connection,
        symbols={"AAPL": None},
        is_stale=lambda symbol: last_bar is None or NOW - last_bar > timedelta(minutes=5),
        broker=SimpleNamespace(contract=lambda s: SimpleNamespace(trading_hours=hours)),
        clock=SimpleNamespace(now=lambda: NOW),
    )


@pytest.mark.parametrize(
    ("engine", "problem"),
    [
        (_engine(), None),
        (_engine(state=EngineState.PAUSED), None),
        (_engine(state=EngineState.HALTED), "halted: daily loss limit"),
        (_engine(ready=False), "starting: not connected and set up yet"),
        (_engine(connection=ConnectionState.DEGRADED), "not connected: degraded"),
        (_engine(last_bar=NOW - timedelta(hours=1)), "stale bars: AAPL"),
        (_engine(last_bar=NOW - timedelta(hours=1), market_open=False), None),
    ],
)
def test_health_problem(engine: SimpleNamespace, problem: str | None) -> None:
    assert health_problem(engine) == problem  # type: ignore[arg-type]
