"""Every command's reply through real python-telegram-bot against the fake Bot API."""

from __future__ import annotations

import multiprocessing
import struct
import time

import pytest

from bot.telegram.app import TelegramFrontEnd
from tests.bot.fake_control import FakeControl, make_fill
from tests.bot.harness import OPERATOR, READER, MemoryOutbox, running_front_end
from tests.fakebotapi import FakeBotAPI, Request


async def ask(
    api: FakeBotAPI, text: str, chat_id: int = OPERATOR, method: str = "sendMessage"
) -> Request:
    """Send a command as `chat_id` and return the bot's first answer to that chat."""
    since = time.monotonic()
    api.inject_command(text, chat_id=chat_id)
    return await api.wait_for(method, lambda r: r.at >= since and r.int("chat_id") == chat_id)


async def test_status_is_tagged_html(api: FakeBotAPI, bot: TelegramFrontEnd) -> None:
    reply = await ask(api, "/status")
    assert reply.params["parse_mode"] == "HTML"
    assert reply.text.startswith("<b>[SIM]</b>")
    assert "Status: RUNNING" in reply.text
    assert "DU123456" in reply.text


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/help", "/flatten [all]"),
        ("/start", "/status"),
        ("/positions", "MSFT"),
        ("/orders", "Open orders: 2"),
        ("/pnl", "PnL 2024-05-01: -12.50"),
        ("/risk", "loss limit -1,000.00"),
        ("/health", "STALE"),
        ("/logs", "high &lt; low"),
        ("/quote AAPL", "bid 187.20  ask 187.30"),
        ("/trades", "Trades: none yet"),
    ],
)
async def test_read_only_commands(
    api: FakeBotAPI, bot: TelegramFrontEnd, command: str, expected: str
) -> None:
    reply = await ask(api, command, chat_id=READER)
    assert expected in reply.text


async def test_trades_lists_fills(
    api: FakeBotAPI, bot: TelegramFrontEnd, control: FakeControl
) -> None:
    control.fills = [make_fill(exec_id=str(i), price=100 + i) for i in range(5)]
    reply = await ask(api, "/trades 3")
    assert "Last 3 trades" in reply.text
    assert "<pre>" in reply.text and "104.00" in reply.text
    assert control.called("trades") == [(3,)]


@pytest.mark.parametrize(
    ("command", "complaint"),
    [
        ("/quote ZZZZ", "Unknown symbol ZZZZ"),
        ("/quote", "/quote takes one symbol"),
        ("/trades abc", "/trades takes a whole number"),
        ("/flatten now", "/flatten takes nothing or &#x27;all&#x27;"),
        ("/frobnicate", "Unknown command /frobnicate"),
    ],
)
async def test_bad_input_gets_a_short_reason(
    api: FakeBotAPI, bot: TelegramFrontEnd, command: str, complaint: str
) -> None:
    reply = await ask(api, command)
    assert complaint in reply.text


async def test_pause_and_resume(
    api: FakeBotAPI, bot: TelegramFrontEnd, control: FakeControl
) -> None:
    reply = await ask(api, "/pause lunch break")
    assert "Paused (lunch break)" in reply.text
    assert control.called("pause") == [("telegram:42 @user42", "lunch break")]
    reply = await ask(api, "/resume")
    assert "Resumed: RUNNING" in reply.text


async def test_read_only_user_cannot_pause(
    api: FakeBotAPI, bot: TelegramFrontEnd, control: FakeControl
) -> None:
    reply = await ask(api, "/pause", chat_id=READER)
    assert "/pause needs an operator" in reply.text
    reply = await ask(api, "/flatten", chat_id=READER)
    assert "/flatten needs an operator" in reply.text
    assert control.called("pause") == [] and control.called("flatten") == []


async def test_chart_sends_a_png(api: FakeBotAPI, bot: TelegramFrontEnd) -> None:
    photo = await ask(api, "/chart AAPL", method="sendPhoto")
    assert photo.files["photo"].startswith(b"\x89PNG")
    width, height = struct.unpack(">II", photo.files["photo"][16:24])  # the PNG's IHDR
    assert (width, height) == (1210, 682)  # candles with the volume panel below
    assert "[SIM]" in photo.params["caption"]
    equity = await ask(api, "/chart", method="sendPhoto")
    assert equity.files["photo"].startswith(b"\x89PNG")


async def test_menu_is_registered(api: FakeBotAPI, bot: TelegramFrontEnd) -> None:
    menu = api.calls("setMyCommands")[0].json("commands")
    names = {c["command"] for c in menu}
    assert {"status", "positions", "flatten", "cancelall", "chart", "quote", "logs"} <= names


async def test_chart_is_drawn_off_the_loop_one_at_a_time(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    async with running_front_end(api, control, outbox):
        await ask(api, "/chart AAPL", method="sendPhoto")  # starts the worker process
        workers = multiprocessing.active_children()
        assert workers
        since = time.monotonic()
        # Drawn in the worker process (matplotlib in a thread stalled the loop 30-100 ms; the
        # loop lag is a figure for benchmarks, not a timed assertion here).
        api.inject_command("/chart AAPL", chat_id=OPERATOR)
        api.inject_command("/chart MSFT", chat_id=OPERATOR)
        await api.wait_for("sendPhoto", lambda r: r.at >= since)
        busy = await api.wait_for("sendMessage", lambda r: r.at >= since)
        assert "Busy drawing another chart" in busy.text
        assert len(api.calls("sendPhoto", lambda r: r.at >= since)) == 1
    assert not any(worker.is_alive() for worker in workers)  # stop() ended the worker
