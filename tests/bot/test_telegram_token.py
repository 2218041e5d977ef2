"""A token Telegram refuses: `tradebot run` says so in one line, exits 2, and the token is in
none of stdout, stderr, the log files or the journal."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from tests.bot.fake_control import FakeControl
from tests.bot.harness import OPERATOR, MemoryOutbox, running_front_end
from tests.fakebotapi import FakeBotAPI

TRADEBOT = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "tradebot"
REAL_LOOKING_TOKEN = "7012345678:AAHfakefakefakefakefakefakefakefake1"


async def _run_tradebot(tmp_path: Path, token: str, base_url: str) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": token,
        "TELEGRAM_ALLOWED_CHAT_IDS": "42",
        "TELEGRAM_API_BASE_URL": base_url,
        "DB_PATH": str(tmp_path / "journal.sqlite3"),
        "LOG_DIR": str(tmp_path / "logs"),
    }
    process = await asyncio.create_subprocess_exec(
        str(TRADEBOT), "run",
        cwd=tmp_path, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def _files_holding(tmp_path: Path, secret: bytes) -> list[str]:
    return [str(p) for p in tmp_path.rglob("*") if p.is_file() and secret in p.read_bytes()]


@pytest.mark.parametrize(
    ("wrong", "status", "hint"),
    [
        ("token", 401, "check the token"),
        # A base URL with a path Telegram does not serve: PTB's request hits an HTML 404 page.
        ("path", 404, "check the token and TELEGRAM_API_BASE_URL"),
    ],
)
async def test_a_refused_token_is_one_line_exit_2_and_never_written(
    tmp_path: Path, wrong: str, status: int, hint: str
) -> None:
    async with FakeBotAPI() as api:
        token = REAL_LOOKING_TOKEN if wrong == "token" else api.token  # the fake's has no shape
        base_url = api.base_url if wrong == "token" else api.base_url.replace("/bot", "/v1/bot")
        code, out, err = await _run_tradebot(tmp_path, token, base_url)
        assert api.calls("getMe") or wrong == "path"
    assert code == 2, err
    assert err.strip().splitlines()[-1] == (
        f"tradebot: Telegram refused TELEGRAM_BOT_TOKEN ({status}): {hint}"
    )
    assert "Traceback" not in out + err
    secret = token.split(":", 1)[1]
    assert token not in out + err and secret not in out + err
    assert (tmp_path / "journal.sqlite3").exists() and list((tmp_path / "logs").iterdir())
    assert _files_holding(tmp_path, secret.encode()) == []


async def test_the_token_in_an_error_text_never_reaches_telegram_or_the_outbox(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    """An error whose text holds the token (PTB's InvalidToken does) is shown redacted."""
    control.flatten_error = RuntimeError(f"The token `{api.token}` was rejected by the server.")
    async with running_front_end(api, control, outbox):
        api.inject_command("/flatten", chat_id=OPERATOR)
        prompt = await api.wait_for("sendMessage", lambda r: "reply_markup" in r.params)
        yes = next(data for text, data in api.buttons(prompt) if "Yes" in text)
        api.press_button(yes, chat_id=OPERATOR, message_id=prompt.result["message_id"])
        failed = await api.wait_for("editMessageText", lambda r: "FAILED" in r.text)
    assert "The token `[REDACTED]` was rejected" in failed.text
    secret = api.token.split(":", 1)[1]
    assert not [r for r in api.requests if secret in json.dumps(r.params)]
    assert not [p for _, p in outbox.rows.values() if secret in p]
    assert not [e for e in outbox.events if secret in repr(e)]


async def test_a_token_refused_after_a_first_outage_still_stops_the_bot(tmp_path: Path) -> None:
    """Telegram unreachable at start (the bot starts trading and keeps connecting), then it
    refuses the token: a bot nobody can command must not go on trading. Before: it did, with no
    polling and no alert, and exited 0 when stopped."""
    async with FakeBotAPI() as api:
        api.fail("502", "getMe", count=1)
        api.fail("401", "getMe")
        code, out, err = await _run_tradebot(tmp_path, api.token, api.base_url)
        assert len(api.calls("getMe")) >= 2
    assert code == 2, err
    assert err.strip().splitlines()[-1] == (
        "tradebot: Telegram refused TELEGRAM_BOT_TOKEN (401): check the token"
    )
    assert "Traceback" not in out + err
