"""The /flatten and /cancelall confirm flow: confirm, cancel, expiry, progress, partial failure."""

from __future__ import annotations

import asyncio
import time

from bot.telegram import TelegramFrontEnd
from engine.domain import Position
from tests.bot.fake_control import FakeControl
from tests.bot.harness import OPERATOR, MemoryOutbox, running_front_end
from tests.fakebotapi import FakeBotAPI, Request


async def prompt_for(api: FakeBotAPI, command: str) -> tuple[Request, dict[str, str]]:
    since = time.monotonic()
    api.inject_command(command, chat_id=OPERATOR)
    prompt = await api.wait_for(
        "sendMessage", lambda r: r.at >= since and "reply_markup" in r.params
    )
    buttons = {text.split(",")[0].split()[-1].lower(): data for text, data in api.buttons(prompt)}
    return prompt, buttons  # {"yes": data, "cancel": data}


def final_edit(api: FakeBotAPI, message_id: int, needle: str) -> object:
    return api.wait_for(
        "editMessageText", lambda r: r.int("message_id") == message_id and needle in r.text
    )


async def test_confirmed_flatten_reports_flat(
    api: FakeBotAPI, bot: TelegramFrontEnd, control: FakeControl
) -> None:
    prompt, buttons = await prompt_for(api, "/flatten")
    assert "Confirm flatten?" in prompt.text and "expires in 60 s" in prompt.text
    assert control.called("flatten") == []
    message_id = prompt.result["message_id"]
    api.press_button(buttons["yes"], chat_id=OPERATOR, message_id=message_id)
    done = await final_edit(api, message_id, "flat (bot)")
    assert "flat (bot): closed AAPL 10, MSFT 20" in done.text  # type: ignore[attr-defined]
    assert control.called("flatten") == [("telegram:42 @user42", "bot")]
    assert "reply_markup" not in done.params  # type: ignore[attr-defined]
    # Pressing again is harmless: the confirmation is used up.
    api.press_button(buttons["yes"], chat_id=OPERATOR, message_id=message_id)
    answer = await api.wait_for(
        "answerCallbackQuery", lambda r: "no longer valid" in r.params.get("text", "")
    )
    assert answer is not None and len(control.called("flatten")) == 1


async def test_flatten_all_uses_account_scope_and_shows_progress(
    api: FakeBotAPI, bot: TelegramFrontEnd, control: FakeControl
) -> None:
    control.flatten_delay = 0.1
    prompt, buttons = await prompt_for(api, "/flatten all")
    assert "EVERY position" in prompt.text
    message_id = prompt.result["message_id"]
    api.press_button(buttons["yes"], chat_id=OPERATOR, message_id=message_id)
    await final_edit(api, message_id, "flattening")
    await final_edit(api, message_id, "closed AAPL 10")  # a progress line, before the end
    await final_edit(api, message_id, "flat (account)")
    assert control.called("flatten") == [("telegram:42 @user42", "account")]


async def test_cancel_does_nothing(
    api: FakeBotAPI, bot: TelegramFrontEnd, control: FakeControl
) -> None:
    prompt, buttons = await prompt_for(api, "/cancelall")
    message_id = prompt.result["message_id"]
    api.press_button(buttons["cancel"], chat_id=OPERATOR, message_id=message_id)
    await final_edit(api, message_id, "cancelled, nothing was done")
    assert control.called("cancel_all") == []


async def test_cancelall_confirmed(
    api: FakeBotAPI, bot: TelegramFrontEnd, control: FakeControl
) -> None:
    prompt, buttons = await prompt_for(api, "/cancelall all")
    api.press_button(buttons["yes"], chat_id=OPERATOR, message_id=prompt.result["message_id"])
    await final_edit(api, prompt.result["message_id"], "Cancelled 2 orders (account)")
    assert control.called("cancel_all") == [("telegram:42 @user42", "account")]


async def test_expired_confirmation_does_nothing(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    async with running_front_end(api, control, outbox, tune={"confirm_ttl": 0.3}):
        prompt, buttons = await prompt_for(api, "/flatten")
        message_id = prompt.result["message_id"]
        await final_edit(api, message_id, "confirmation expired")
        api.press_button(buttons["yes"], chat_id=OPERATOR, message_id=message_id)
        await api.wait_for("answerCallbackQuery")
    assert control.called("flatten") == []


async def test_partial_failure_says_what_is_not_closed(
    api: FakeBotAPI, bot: TelegramFrontEnd, control: FakeControl
) -> None:
    control.flatten_fail = {"MSFT"}
    prompt, buttons = await prompt_for(api, "/flatten")
    api.press_button(buttons["yes"], chat_id=OPERATOR, message_id=prompt.result["message_id"])
    done = await final_edit(api, prompt.result["message_id"], "NOT flat")
    assert "closed AAPL 10" in done.text and "MSFT -20: order rejected" in done.text  # type: ignore[attr-defined]


async def test_kill_switch_fires_while_telegram_hangs(
    api: FakeBotAPI, bot: TelegramFrontEnd, control: FakeControl
) -> None:
    """The flatten starts before any Telegram I/O; its report arrives once Telegram is back."""
    control.positions_list = [Position("AAPL", 10, 180.0)]
    prompt, buttons = await prompt_for(api, "/flatten")
    api.fail("hang", "editMessageText", seconds=60)
    api.fail("hang", "answerCallbackQuery", seconds=60)
    api.press_button(buttons["yes"], chat_id=OPERATOR, message_id=prompt.result["message_id"])
    await asyncio.wait_for(control.flatten_started.wait(), 5)
    assert control.positions_list == []
    api.heal()
    report = await api.wait_for(
        ("sendMessage", "editMessageText"), lambda r: "flat (bot)" in r.text, timeout=10
    )
    assert "closed AAPL 10" in report.text
