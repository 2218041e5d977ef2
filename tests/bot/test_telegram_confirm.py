"""The /flatten and /cancelall confirm flow: confirm, cancel, expiry, progress, partial failure."""

from __future__ import annotations

import asyncio
import time

from bot.telegram.app import TelegramFrontEnd
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


async def test_prompt_survives_one_failed_send(
    api: FakeBotAPI, bot: TelegramFrontEnd, control: FakeControl
) -> None:
    api.fail("502", "sendMessage", count=1)
    prompt, buttons = await prompt_for(api, "/flatten")
    assert len(api.calls("sendMessage")) == 2  # the 502, then the prompt
    api.press_button(buttons["yes"], chat_id=OPERATOR, message_id=prompt.result["message_id"])
    await final_edit(api, prompt.result["message_id"], "flat (bot)")


async def test_prompt_that_cannot_be_shown_says_so(
    api: FakeBotAPI, bot: TelegramFrontEnd, control: FakeControl
) -> None:
    api.fail("502", "sendMessage", count=3, where=lambda r: "reply_markup" in r.params)
    api.inject_command("/flatten all", chat_id=OPERATOR)
    told = await api.wait_for("sendMessage", lambda r: "Could not show the confirmation" in r.text)
    assert "send /flatten all again" in told.text
    assert len(api.calls("sendMessage", lambda r: "reply_markup" in r.params)) == 3
    assert bot.confirm._pending == {} and control.called("flatten") == []


async def test_only_the_requester_or_an_operator_may_confirm(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    group, alice, bob, carol = -100, 51, 52, 53

    async def ask_as(user: int) -> tuple[int, dict[str, str]]:
        since = time.monotonic()
        api.inject_command("/flatten", chat_id=group, user_id=user, chat_type="group")
        prompt = await api.wait_for(
            "sendMessage", lambda r: r.at >= since and "reply_markup" in r.params
        )
        datas = {t.split(",")[0].split()[-1].lower(): d for t, d in api.buttons(prompt)}
        return prompt.result["message_id"], datas

    async def press_as(user: int, data: str, message_id: int) -> str:
        since = time.monotonic()
        api.press_button(data, chat_id=group, message_id=message_id, user_id=user)
        answer = await api.wait_for("answerCallbackQuery", lambda r: r.at >= since)
        return answer.params.get("text", "")

    # Everybody may act (no operators set): still, only Alice answers Alice's prompt.
    async with running_front_end(api, control, outbox, {group}, set()):
        message_id, buttons = await ask_as(alice)
        assert "only who asked" in await press_as(bob, buttons["yes"], message_id)
        assert "only who asked" in await press_as(bob, buttons["cancel"], message_id)
        assert control.called("flatten") == []
        assert "flattening" in await press_as(alice, buttons["yes"], message_id)
        await final_edit(api, message_id, "flat (bot)")
    assert control.called("flatten") == [("telegram:51 @user51", "bot")]
    # Operators may answer for each other; the journal names who confirmed.
    async with running_front_end(api, control, outbox, {group}, {carol, alice}):
        message_id, buttons = await ask_as(alice)
        await press_as(carol, buttons["yes"], message_id)
        await final_edit(api, message_id, "Flat (bot): nothing to close")
    assert control.called("flatten")[1] == (
        "telegram:53 (asked by telegram:51 @user51)",
        "bot",
    )


async def test_final_report_is_not_overwritten_by_a_late_progress_edit(
    api: FakeBotAPI, bot: TelegramFrontEnd, control: FakeControl
) -> None:
    control.flatten_delay = 0.05
    prompt, buttons = await prompt_for(api, "/flatten")
    message_id = prompt.result["message_id"]
    api.fail("slow", "editMessageText", count=1, delay=0.5)  # the first progress edit
    api.press_button(buttons["yes"], chat_id=OPERATOR, message_id=message_id)
    await final_edit(api, message_id, "flat (bot)")
    await api.wait_for("editMessageText", count=2)  # the slow one has landed too
    assert "flat (bot)" in api.messages[(OPERATOR, message_id)]["text"]


async def test_a_long_failure_report_still_arrives(
    api: FakeBotAPI, bot: TelegramFrontEnd, control: FakeControl
) -> None:
    control.flatten_error = RuntimeError("broker said: " + "x" * 5000)
    prompt, buttons = await prompt_for(api, "/flatten")
    api.press_button(buttons["yes"], chat_id=OPERATOR, message_id=prompt.result["message_id"])
    first = await api.wait_for("sendMessage", lambda r: "flatten FAILED" in r.text)
    await bot.delivery.wait_idle()
    report = [r.text for r in api.sent(OPERATOR) if "FAILED" in r.text or "xxxx" in r.text]
    assert first.text in report and "".join(report).count("x") >= 5000
    assert bot.delivery.failed == 0
