"""Settings: defaults, parsing, and one clear line with exit code 2 for every bad value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.config import SettingsError, load_settings, parse_symbols
from engine.domain import Instrument

TOKEN = "1234567890:AAExampleExampleExampleExampleExam"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith(("IB_", "TELEGRAM_", "SIM_", "MAX_", "ALERT_")) or key in {
            "SYMBOLS", "STRATEGY", "STRATEGY_PARAMS", "TRADING_MODE", "BAR_SIZE", "DB_PATH",
            "LOG_DIR", "LOG_LEVEL", "ORDER_QUANTITY", "DISPLAY_TZ", "DAILY_SUMMARY_TIME",
        }:
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults() -> None:
    settings = load_settings(None)
    assert settings.simulated and settings.trading_mode == "paper"
    assert settings.symbols == (Instrument("AAPL"), Instrument("MSFT"))
    assert settings.bar_seconds == 60
    assert settings.strategy == "sma_cross"
    assert (settings.strategy_params.fast, settings.strategy_params.slow) == (10, 30)
    assert settings.ib_client_id == 1


def test_symbol_forms() -> None:
    assert parse_symbols("aapl, EURUSD:CASH, BTC:CRYPTO:PAXOS, ES:FUT:CME") == (
        Instrument("AAPL"),
        Instrument("EURUSD", "CASH", "IDEALPRO", "USD"),
        Instrument("BTC", "CRYPTO", "PAXOS", "USD"),
        Instrument("ES", "FUT", "CME", "USD"),
    )


def test_a_future_follows_the_front_month_unless_given_an_expiry() -> None:
    front, june, dated = parse_symbols("ES:FUT:CME, NQ:FUT:CME:202706, MES:FUT:CME:USD:20270618")
    assert front == Instrument("ES", "FUT", "CME", "USD") and front.follows_front_month
    assert june == Instrument("NQ", "FUT", "CME", "USD", "202706")
    assert not june.follows_front_month
    assert dated.expiry == "20270618" and dated.currency == "USD"
    with pytest.raises(ValueError, match="is not SYMBOL"):
        parse_symbols("ES:FUT:CME:USD:X:202706")


def test_env_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SYMBOLS=SPY\nSTRATEGY_PARAMS=fast=5,slow=20\n")
    settings = load_settings()
    assert settings.symbols == (Instrument("SPY"),)
    assert settings.strategy_params.fast == 5


def test_token_with_chat_ids() -> None:
    settings = load_settings(
        None, telegram_bot_token=TOKEN, telegram_allowed_chat_ids="42, -1001"
    )
    assert settings.telegram_allowed_chat_ids == {42, -1001}
    assert TOKEN not in repr(settings)


@pytest.mark.parametrize(
    ("env", "variable", "expected"),
    [
        ({"IB_PORT": "abc"}, "IB_PORT", "TCP port"),
        ({"IB_PORT": "70000"}, "IB_PORT", "TCP port"),
        ({"SYMBOLS": ""}, "SYMBOLS", "at least one symbol"),
        ({"SYMBOLS": "AAPL:BOND"}, "SYMBOLS", "security type"),
        ({"SYMBOLS": "AAPL,aapl"}, "SYMBOLS", "more than once"),
        ({"TRADING_MODE": "yolo"}, "TRADING_MODE", "'paper' or 'live'"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN}, "TELEGRAM_ALLOWED_CHAT_IDS", "required"),
        ({"TELEGRAM_ALLOWED_CHAT_IDS": "me"}, "TELEGRAM_ALLOWED_CHAT_IDS", "numeric"),
        ({"STRATEGY_PARAMS": "fast=ten"}, "STRATEGY_PARAMS", "fast"),
        ({"STRATEGY": "moon"}, "STRATEGY", "unknown strategy"),
        ({"BAR_SIZE": "7 mins"}, "BAR_SIZE", "one of"),
        ({"IB_CLIENT_ID": "0"}, "IB_CLIENT_ID", "whole number"),
        ({"MAX_DAILY_LOSS": "-5"}, "MAX_DAILY_LOSS", "greater than 0"),
        ({"DISPLAY_TZ": "Mars/Olympus"}, "DISPLAY_TZ", "time zone"),
        ({"IB_HOST": "127.0.0.1", "IB_PORT": "4001"}, "IB_PORT", "live-trading port"),
        ({"IB_HOST": "ib-gateway", "IB_PORT": "4003"}, "IB_PORT", "live-trading port"),
        ({"ALERT_FILLS": "loud"}, "ALERT_FILLS", "'on', 'silent' or 'off'"),
    ],
)
def test_bad_setting_is_one_line_and_exit_2(
    env: dict[str, str], variable: str, expected: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "journal"],
        env={**os.environ, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"tradebot: {variable}: "), lines[0]
    assert expected in lines[0]
    assert "Traceback" not in result.stderr
    assert TOKEN not in result.stderr + result.stdout


def test_settings_error_lists_each_variable() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(None, ib_port="abc", sim_speed="fast")
    assert [line.split(":")[0] for line in caught.value.lines] == ["IB_PORT", "SIM_SPEED"]


@pytest.mark.parametrize("value", ["", "  "])
def test_empty_log_dir_means_no_log_file(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("LOG_DIR", value)
    assert load_settings(None).log_dir is None


def test_log_dir_default_is_logs() -> None:
    assert load_settings(None).log_dir == Path("logs")


def test_the_containers_ports() -> None:
    """gnzsnz/ib-gateway: 4004 paper passes, 4003 live only with TRADING_MODE=live."""
    assert load_settings(None, ib_host="ib-gateway", ib_port=4004).ib_port == 4004
    live = load_settings(None, ib_host="ib-gateway", ib_port=4003, trading_mode="live")
    assert live.trading_mode == "live"
