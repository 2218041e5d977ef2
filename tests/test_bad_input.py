"""Bad settings through the installed `tradebot run`: one line naming the variable, exit 2, no
traceback, at once, before anything starts (issue 8, items 5 and 7)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from engine.config import MAX_SIM_SEED, MAX_SIM_SPEED, load_settings
from ibsim import cli as ibsim_cli
from tests.fakebotapi import FakeBotAPI
from tests.tradebot_script import TRADEBOT, clean_env, run_tradebot

TOKEN = "123456:TEST-token-do-not-log"
QUICK = 5.0  # seconds: refused before anything starts (a busy machine included)


def _files(tmp_path: Path) -> dict[str, str]:
    return {"DB_PATH": str(tmp_path / "journal.sqlite3"), "LOG_DIR": str(tmp_path / "logs")}


def _refused(tmp_path: Path, *variables: str, **settings: str) -> str:
    """Run `tradebot run` with `settings`; check it refuses them with one line per variable
    named in `variables`, in that order, and nothing else. Returns the first line."""
    result = run_tradebot("run", cwd=tmp_path, env=clean_env(**_files(tmp_path), **settings))
    assert result.code == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert [line.split(":")[:2] for line in result.lines] == [
        ["tradebot", f" {variable}"] for variable in variables
    ], result.stderr
    assert result.seconds < QUICK
    # Nothing was started: no journal, no log folder, no gateway state.
    assert sorted(path.name for path in tmp_path.iterdir()) == []
    return result.lines[0]


@pytest.mark.parametrize(
    ("settings", "variable"),
    [
        ({"ORDER_QUANTITY": "inf", "MAX_POSITION": "inf"}, ("ORDER_QUANTITY", "MAX_POSITION")),
        ({"MAX_POSITION": "inf"}, "MAX_POSITION"),
        ({"MAX_POSITION": "1e10"}, "MAX_POSITION"),
        ({"MAX_NOTIONAL": "inf"}, "MAX_NOTIONAL"),
        ({"MAX_DAILY_LOSS": "1e13"}, "MAX_DAILY_LOSS"),
        ({"MAX_ORDERS_PER_MINUTE": "100001"}, "MAX_ORDERS_PER_MINUTE"),
        ({"SIM_SPEED": "inf"}, "SIM_SPEED"),
        ({"SIM_SPEED": "1e12"}, "SIM_SPEED"),
        ({"SIM_SPEED": "3601"}, "SIM_SPEED"),
        ({"SIM_SPEED": "0"}, "SIM_SPEED"),
        ({"SIM_SEED": "-1"}, "SIM_SEED"),
        ({"SIM_SEED": str(2**32)}, "SIM_SEED"),
        ({"TAKE_PROFIT_PCT": "inf"}, "TAKE_PROFIT_PCT"),
        ({"TAKE_PROFIT_PCT": "1001"}, "TAKE_PROFIT_PCT"),
        ({"STOP_LOSS_PCT": "100"}, "STOP_LOSS_PCT"),
        ({"EQUITY_SNAPSHOT_MINUTES": "inf"}, "EQUITY_SNAPSHOT_MINUTES"),
        ({"EQUITY_SNAPSHOT_MINUTES": "10081"}, "EQUITY_SNAPSHOT_MINUTES"),
        ({"EQUITY_SNAPSHOT_MINUTES": "0.01"}, "EQUITY_SNAPSHOT_MINUTES"),
        ({"IB_CLIENT_ID": "99999999999999999999"}, "IB_CLIENT_ID"),
        ({"JOURNAL_RETENTION_DAYS": "0"}, "JOURNAL_RETENTION_DAYS"),
        ({"JOURNAL_RETENTION_DAYS": "3651"}, "JOURNAL_RETENTION_DAYS"),
        ({"JOURNAL_RETENTION_DAYS": "inf"}, "JOURNAL_RETENTION_DAYS"),
        ({"JOURNAL_RETENTION_DAYS": "1.5"}, "JOURNAL_RETENTION_DAYS"),
        ({"HEALTH_PORT": "0"}, "HEALTH_PORT"),
        ({"HEALTH_PORT": "65536"}, "HEALTH_PORT"),
    ],
)
def test_out_of_range_number_is_one_line_exit_2(
    tmp_path: Path, settings: dict[str, str], variable: str | tuple[str, ...]
) -> None:
    names = variable if isinstance(variable, tuple) else (variable,)
    line = _refused(tmp_path, *names, **settings)
    assert ": expected " in line


@pytest.mark.parametrize(
    "variable",
    [
        "ORDER_QUANTITY", "MAX_POSITION", "MAX_NOTIONAL", "MAX_DAILY_LOSS", "STOP_LOSS_PCT",
        "TAKE_PROFIT_PCT", "EQUITY_SNAPSHOT_MINUTES", "SIM_SPEED",
    ],
)  # fmt: skip
def test_nan_is_refused_everywhere(tmp_path: Path, variable: str) -> None:
    _refused(tmp_path, variable, **{variable: "nan"})


@pytest.mark.parametrize(
    ("strategy", "params", "message"),
    [
        ("sma_cross", "fast=10,slow=99999999999999999999", "slow must be at most 10000 bars"),
        ("sma_cross", "fast=10001,slow=10002", "fast must be at most 10000 bars"),
        ("rsi_reversion", "period=10001", "period must be at most 10000 bars"),
        ("bollinger_breakout", "period=99999999999999999999", "period must be at most 10000"),
        ("bollinger_breakout", "k=inf", "k: expected a finite number, got 'inf'"),
        ("bollinger_breakout", "k=1e300", "k must be at most 10"),
    ],
)
def test_strategy_parameters_out_of_range(
    tmp_path: Path, strategy: str, params: str, message: str
) -> None:
    line = _refused(tmp_path, "STRATEGY_PARAMS", STRATEGY=strategy, STRATEGY_PARAMS=params)
    assert message in line


def test_the_ends_of_each_range_are_accepted(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        order_quantity=1e9, max_position=1e9, max_notional=1e12, max_daily_loss=1e12,
        max_orders_per_minute=100_000, take_profit_pct=1000, stop_loss_pct=99.99,
        equity_snapshot_minutes=7 * 24 * 60, sim_speed=3600, sim_seed=2**32 - 1,
        strategy_params="fast=9999,slow=10000",
    )  # fmt: skip
    assert settings.sim_speed == 3600 and settings.strategy_params.slow == 10_000
    low = load_settings(None, sim_speed=0.1, sim_seed=0, equity_snapshot_minutes=0.1)
    assert (low.sim_speed, low.sim_seed) == (0.1, 0)


def test_the_standalone_gateway_has_the_same_limits() -> None:
    assert (ibsim_cli.MAX_SPEED, ibsim_cli.MAX_SEED) == (MAX_SIM_SPEED, MAX_SIM_SEED)


# --- TELEGRAM_API_BASE_URL -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://api.telegram.org/bot", "in clear"),
        ("http://10.0.0.5:8081/bot", "in clear"),
        ("http://127.0.0.1.example.com/bot", "in clear"),
        ("ftp://api.telegram.org/bot", "not an http(s) URL"),
        ("api.telegram.org/bot", "not an http(s) URL"),
    ],
)
def test_base_url_that_would_leak_the_token_is_refused(
    tmp_path: Path, url: str, reason: str
) -> None:
    line = _refused(
        tmp_path, "TELEGRAM_API_BASE_URL",
        TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_ALLOWED_CHAT_IDS="42", TELEGRAM_API_BASE_URL=url,
    )  # fmt: skip
    assert reason in line
    assert TOKEN not in line


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("https://api.telegram.org/bot/", "https://api.telegram.org/bot"),
        ("http://127.0.0.1:8081/bot", "http://127.0.0.1:8081/bot"),
        ("http://127.8.9.10:8081/bot//", "http://127.8.9.10:8081/bot"),
        ("http://[::1]:8081/bot", "http://[::1]:8081/bot"),
        ("http://localhost:8081/bot/", "http://localhost:8081/bot"),
        ("https://bots.example.com/bot", "https://bots.example.com/bot"),
    ],
)
def test_base_url_forms_that_keep_the_token_private(given: str, used: str) -> None:
    assert load_settings(None, telegram_api_base_url=given).telegram_api_base_url == used


async def test_base_url_with_a_trailing_slash_reaches_the_bot_api(tmp_path: Path) -> None:
    """`.../bot/` + token used to be a 404 (and a traceback carrying the token)."""
    async with FakeBotAPI(token=TOKEN) as api:
        env = clean_env(
            **_files(tmp_path), TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_ALLOWED_CHAT_IDS="42",
            TELEGRAM_API_BASE_URL=api.base_url + "/", SIM_SPEED="60",
        )  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            str(TRADEBOT), "run", cwd=tmp_path, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            await api.wait_for("getMe", timeout=20)
            await api.wait_for("getUpdates", timeout=20, answered=False)
            # The first alert to the chat: the engine is up, so SIGTERM finds no connect under way.
            await api.wait_for("sendMessage", timeout=20)
            process.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(process.communicate(), 20)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.returncode == 0, err.decode()
        assert "Traceback" not in err.decode() and TOKEN not in (out + err).decode()


LOOKS_LIKE_A_TOKEN = "123456789:AAHfakefakefakefakefakefakefakefake1"


@pytest.mark.parametrize("variable", ["TELEGRAM_ALLOWED_CHAT_IDS", "TELEGRAM_OPERATOR_IDS",
                                      "DISPLAY_TZ"])
@pytest.mark.parametrize("given_in", ["environment", ".env"])
def test_a_token_pasted_into_the_wrong_setting_is_not_echoed(
    tmp_path: Path, variable: str, given_in: str
) -> None:
    settings = {"TELEGRAM_BOT_TOKEN": LOOKS_LIKE_A_TOKEN, "TELEGRAM_ALLOWED_CHAT_IDS": "5",
                variable: LOOKS_LIKE_A_TOKEN}
    if given_in == ".env":
        (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        settings = {}
    result = run_tradebot("run", cwd=tmp_path, env=clean_env(**settings))
    assert result.code == 2
    assert result.lines[-1].startswith(f"tradebot: {variable}: expected"), result.stderr
    assert LOOKS_LIKE_A_TOKEN.split(":")[1] not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        # python-dotenv skipped the line with a warning: the default 1000 applied.
        ('MAX_DAILY_LOSS="200\n', ".env: line 1 cannot be read"),
        # Other than UTF-8: a traceback before.
        ("DISPLAY_TZ=Europe/Zürich\n".encode("latin-1"), ".env: line 1 is not UTF-8 text"),
        # Misspelt: no operators at all, so every member of an allowed group could /flatten.
        ("TELEGRAM_OPERATOR_ID=42\n", "TELEGRAM_OPERATOR_ID (.env): not a tradebot setting; "
                                      "did you mean TELEGRAM_OPERATOR_IDS?"),
        ("MAX_DAILY_LOS=50\n", "MAX_DAILY_LOS (.env): not a tradebot setting; "
                               "did you mean MAX_DAILY_LOSS?"),
    ],
)
def test_a_dotenv_that_would_be_misread_is_one_line_exit_2(
    tmp_path: Path, content: str | bytes, expected: str
) -> None:
    env_file = tmp_path / ".env"
    if isinstance(content, bytes):
        env_file.write_bytes(content)
    else:
        env_file.write_text(content)
    result = run_tradebot("run", cwd=tmp_path, env=clean_env())
    assert result.code == 2, result.stderr
    assert result.lines == [f"tradebot: {expected}"] or (
        len(result.lines) == 1 and expected in result.lines[0]
    ), result.stderr
    assert "Traceback" not in result.stderr


def test_a_misspelt_setting_in_the_environment_is_refused(tmp_path: Path) -> None:
    result = run_tradebot("run", cwd=tmp_path, env=clean_env(TELEGRAM_OPERATOR_ID="42"))
    assert result.code == 2
    assert result.lines == ["tradebot: TELEGRAM_OPERATOR_ID (environment): not a tradebot "
                            "setting; did you mean TELEGRAM_OPERATOR_IDS?"]


def test_other_programs_lines_in_dotenv_are_left_alone(tmp_path: Path) -> None:
    """An .env shared with an IB Gateway container (TWS_USERID, ...) is fine."""
    (tmp_path / ".env").write_text("TWS_USERID=someone\nVNC_SERVER_PASSWORD=x\nSIM_SEED=abc\n")
    result = run_tradebot("run", cwd=tmp_path, env=clean_env())
    assert result.lines == ["tradebot: SIM_SEED: expected a whole number from 0 to 4294967295, "
                            "got 'abc'"], result.stderr
