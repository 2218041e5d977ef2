"""deploy/ (issue 10, item 4): the systemd unit and the compose file hold the options the code
relies on, and give a shutdown more time than the code's longest path."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bot.runner import EXIT_CONFIGURATION, longest_shutdown
from engine.config import LIVE_PORTS

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def _unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file: section → key → every value given (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    section: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = sections.setdefault(line.strip("[]"), {})
            continue
        key, value = line.split("=", 1)
        section.setdefault(key.strip(), []).append(value.strip())
    return sections


def _seconds(span: str) -> float:
    """A systemd/compose time span: '90', '90s', '1min 30s', '1m30s'."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", span)
    assert parts and "".join(n + u for n, u in parts) == span.replace(" ", ""), span
    return sum(float(number) * units[unit] for number, unit in parts)


def test_the_unit_file() -> None:
    unit = _unit(DEPLOY / "tradebot.service")
    service = {key: values[-1] for key, values in unit["Service"].items()}
    assert service["Type"] == "notify"
    assert service["ExecStart"].endswith("/tradebot run")
    assert _seconds(service["WatchdogSec"]) >= 10
    assert service["Restart"] == "on-failure"
    assert str(EXIT_CONFIGURATION) in service["RestartPreventExitStatus"].split()
    assert _seconds(service["TimeoutStopSec"]) > longest_shutdown()
    assert service["KillSignal"] == "SIGTERM"
    assert service["EnvironmentFile"].startswith("/etc/")
    assert service["User"] not in ("", "root")
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["ProtectHome"] == "yes"
    assert service["PrivateTmp"] == "yes"
    assert "AF_UNIX" in service["RestrictAddressFamilies"]  # NOTIFY_SOCKET
    writable = service["ReadWritePaths"].split()
    environment = dict(value.split("=", 1) for value in unit["Service"]["Environment"])
    assert str(Path(environment["DB_PATH"]).parent) in writable
    assert environment["LOG_DIR"] in writable
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_the_longest_shutdown_is_the_code_bounds() -> None:
    from bot.commands import ACTION_GRACE
    from bot.runner import CANCEL_ON_EXIT_SECONDS, SHUTDOWN_SECONDS

    assert longest_shutdown() > ACTION_GRACE + CANCEL_ON_EXIT_SECONDS + SHUTDOWN_SECONDS
    assert longest_shutdown() == 75.0  # the README says so


def test_the_compose_file() -> None:
    text = (DEPLOY / "docker-compose.yml").read_text()
    assert "image: ghcr.io/gnzsnz/ib-gateway" in text
    assert "IB_HOST: ib-gateway" in text
    assert "IB_PORT: ${IB_PORT:-4004}" in text and 4004 not in LIVE_PORTS and 4003 in LIVE_PORTS
    (grace,) = re.findall(r"^\s*stop_grace_period:\s*(\S+)", text, re.MULTILINE)
    assert _seconds(grace) > longest_shutdown()
    assert re.search(r"healthcheck:\n\s+test: .*127\.0\.0\.1:8080/healthz", text)
    assert 'HEALTH_PORT: "8080"' in text
    assert "tradebot-data:/data" in text and "DB_PATH: /data/" in text
    assert "LOG_DIR: /data/logs" in text


def test_the_dockerfile() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    for package in ("engine", "bot", "ibsim"):
        assert f"COPY {package} {package}" in text
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert "STOPSIGNAL SIGTERM" in text
    assert re.search(r"^USER tradebot$", text, re.MULTILINE)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_itself_accepts_the_unit() -> None:
    """systemd's own parser: every key known, every value of the right form. The one complaint
    allowed is that the program is not installed at /opt/tradebot on this machine."""
    result = subprocess.run(
        ["systemd-analyze", "verify", str(DEPLOY / "tradebot.service")],
        capture_output=True, text=True, timeout=30, check=False,
    )
    complaints = [
        line for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "/opt/tradebot/.venv/bin/tradebot is not executable" not in line
    ]
    assert complaints == []
