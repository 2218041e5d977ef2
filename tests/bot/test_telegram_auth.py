"""Deny by default: strangers (chat or user) get nothing, stale commands do not run."""

from __future__ import annotations

import logging
import time

import pytest

from bot.telegram.app import TelegramFrontEnd
from tests.bot.fake_control import FakeControl
from tests.bot.harness import OPERATOR, READER, STRANGER, MemoryOutbox, running_front_end
from tests.fakebotapi import FakeBotAPI


def _never_leaked(api: FakeBotAPI, chat_id: int) -> None:
    for request in api.requests:
        if request.params.get("chat_id") == str(chat_id):
            assert request.method == "sendMessage"
            assert request.text == "not authorized"


async def test_stranger_chat_gets_nothing_and_operators_hear_once(
    api: FakeBotAPI, bot: TelegramFrontEnd, control: FakeControl, outbox: MemoryOutbox
) -> None:
    since = time.monotonic()
    api.inject_command("/positions", chat_id=STRANGER)
    refusal = await api.wait_for("sendMessage", lambda r: r.int("chat_id") == STRANGER)
    assert refusal.text == "not authorized"
    alert = await api.wait_for(
        "sendMessage", lambda r: r.int("chat_id") == OPERATOR and r.at >= since
    )
    assert "Unauthorized access attempt" in alert.text and "666" in alert.text
    assert "/positions" in alert.text
    # A second attempt within the hour: journaled, but no new alert and no new reply.
    api.inject_command("/flatten all", chat_id=STRANGER)
    api.inject_command("/status", chat_id=OPERATOR)
    await api.wait_for("sendMessage", lambda r: "Status" in r.text)
    assert (
        len(
            api.calls(
                "sendMessage", lambda r: "Unauthorized" in r.text and r.int("chat_id") == OPERATOR
            )
        )
        == 1
    )
    assert len(api.calls("sendMessage", lambda r: r.int("chat_id") == STRANGER)) == 1
    assert outbox.kinds().count("stranger") == 2
    assert control.called("positions") == [] and control.called("flatten") == []
    _never_leaked(api, STRANGER)


async def test_stranger_button_press_is_refused(
    api: FakeBotAPI, bot: TelegramFrontEnd, control: FakeControl, outbox: MemoryOutbox
) -> None:
    # A forged press in the operator's own chat, by another user, and one from a stranger chat.
    api.press_button("confirm:whatever:yes", chat_id=OPERATOR, user_id=STRANGER)
    answer = await api.wait_for("answerCallbackQuery")
    assert answer.params.get("text") == "not authorized"
    api.press_button("confirm:whatever:yes", chat_id=STRANGER)
    await api.wait_for("answerCallbackQuery", count=2)
    assert control.called("flatten") == []
    assert outbox.kinds().count("stranger") == 2


async def test_stranger_user_in_private_chat_is_refused(
    api: FakeBotAPI, bot: TelegramFrontEnd, control: FakeControl
) -> None:
    api.inject_command("/status", chat_id=OPERATOR, user_id=STRANGER)
    await api.wait_for("sendMessage", lambda r: "Unauthorized" in r.text)
    assert control.called("status") == []


async def test_group_members_may_read_but_only_operators_act(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    group = -100
    async with running_front_end(api, control, outbox, {group}, {OPERATOR}):
        api.inject_command("/status", chat_id=group, user_id=READER, chat_type="group")
        await api.wait_for("sendMessage", lambda r: "Status" in r.text)
        api.inject_command("/pause", chat_id=group, user_id=READER, chat_type="group")
        await api.wait_for("sendMessage", lambda r: "needs an operator" in r.text)
        api.inject_command("/pause", chat_id=group, user_id=OPERATOR, chat_type="group")
        await api.wait_for("sendMessage", lambda r: "Paused" in r.text)
    assert [by for by, _ in control.called("pause")] == ["telegram:42 @user42"]


async def test_stale_flatten_is_not_executed(
    api: FakeBotAPI, bot: TelegramFrontEnd, control: FakeControl, outbox: MemoryOutbox
) -> None:
    last_night = int(time.time()) - 8 * 3600
    api.inject_command("/flatten all", chat_id=OPERATOR, date=last_night)
    reply = await api.wait_for("sendMessage", lambda r: "Ignored" in r.text)
    assert "/flatten" in reply.text and "older than 60 s" in reply.text
    assert "reply_markup" not in reply.params  # no confirm button either
    api.inject_command("/status", chat_id=OPERATOR)
    await api.wait_for("sendMessage", lambda r: "Status" in r.text)
    assert control.called("flatten") == []
    assert "stale_command" in outbox.kinds()


async def test_fresh_command_with_a_slightly_old_date_still_runs(
    api: FakeBotAPI, bot: TelegramFrontEnd
) -> None:
    api.inject_command("/status", chat_id=OPERATOR, date=int(time.time()) - 30)
    await api.wait_for("sendMessage", lambda r: "Status" in r.text)


async def test_token_never_in_messages_or_logs(
    api: FakeBotAPI, bot: TelegramFrontEnd, caplog: object
) -> None:
    caplog.set_level(logging.DEBUG)
    api.fail("502", "sendMessage", count=1)
    api.inject_command("/status", chat_id=OPERATOR)
    await api.wait_for("sendMessage", lambda r: "Status" in r.text)
    secret = api.token.split(":", 1)[1]
    assert all(secret not in r.getMessage() for r in caplog.records)
    assert all(secret not in r.text for r in api.requests)


async def test_slow_telegram_does_not_make_a_fresh_flatten_stale(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    """Replies to stale commands hang; the gate must not wait for them, and a /flatten sent
    now is judged by when it was fetched, not when a handler got to it."""
    async with running_front_end(api, control, outbox, tune={"stale_after": 2.0}):
        api.fail("hang", "sendMessage", count=5, where=lambda r: "Ignored" in r.text)
        old = int(api.now()) - 100
        for _ in range(5):
            api.inject_command("/status", chat_id=OPERATOR, date=old)
        api.inject_command("/flatten", chat_id=OPERATOR)
        prompt = await api.wait_for("sendMessage", lambda r: "reply_markup" in r.params)
        assert "Confirm flatten?" in prompt.text
    stale = [text for _, kind, text, _ in outbox.events if kind == "stale_command"]
    assert len(stale) == 5 and all("ignored /status" in text for text in stale)


@pytest.mark.parametrize(
    ("telegram_ahead", "age", "runs"),
    [
        (-120.0, 0, True),  # our clock is 2 min fast: a fresh command is not stale
        (-120.0, 90, False),
        (120.0, 90, False),  # our clock is 2 min slow: a stale command is still stale
        (120.0, 0, True),
    ],
)
async def test_stale_rule_uses_telegrams_clock(
    control: FakeControl,
    outbox: MemoryOutbox,
    telegram_ahead: float,
    age: int,
    runs: bool,
) -> None:
    # On the clock's own logger: the root's handlers (caplog's) depend on what earlier tests in
    # this worker did to logging (seen once under pytest-xdist).
    warnings = _Records()
    clock_log = logging.getLogger("bot.telegram.clock")
    clock_log.addHandler(warnings)
    try:
        async with (
            FakeBotAPI(clock_offset=telegram_ahead) as api,
            running_front_end(api, control, outbox),
        ):
            api.inject_command("/status", chat_id=OPERATOR, date=int(api.now()) - age)
            reply = await api.wait_for("sendMessage", lambda r: r.int("chat_id") == OPERATOR)
    finally:
        clock_log.removeHandler(warnings)
    assert ("Status" in reply.text) is runs
    assert ("Ignored /status" in reply.text) is not runs
    assert any("clock is 120 s" in r.getMessage() for r in warnings.records)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_commands_for_another_bot_are_ignored(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    group = -100
    async with running_front_end(api, control, outbox, {group}, {OPERATOR}):
        for text in ("/flatten@other_bot", "/pause@Other_Bot now", "/status@trade_test_bot"):
            api.inject_command(text, chat_id=group, user_id=OPERATOR, chat_type="group")
        await api.wait_for("sendMessage", lambda r: "Status" in r.text)
        api.inject_command("/positions", chat_id=group, user_id=OPERATOR, chat_type="group")
        await api.wait_for("sendMessage", lambda r: "Positions" in r.text)
    assert len(api.sent(group)) == 2  # no confirm prompt, no "Paused"
    assert control.called("pause") == []


async def test_what_is_recorded_of_a_stranger(
    api: FakeBotAPI, bot: TelegramFrontEnd, control: FakeControl, outbox: MemoryOutbox
) -> None:
    """The audit trail of a refusal names who, where and what: the journal row (a warning,
    with the text sent), the operators' alert, the counter; a stranger's button press is
    answered 'not authorized' and recorded as a button."""
    since = time.monotonic()
    api.inject_command("/flatten all", chat_id=STRANGER)
    alert = await api.wait_for(
        "sendMessage", lambda r: r.int("chat_id") == OPERATOR and r.at >= since
    )
    who = f"telegram:{STRANGER} @user{STRANGER} (User)"
    assert f"user {who} in chat {STRANGER} (private)" in alert.text
    assert "sent: /flatten all" in alert.text
    level, _, message, details = next(e for e in outbox.events if e[1] == "stranger")
    assert (level, details) == ("warning", {"text": "/flatten all"})
    assert message == f"refused {who} in chat {STRANGER} (private)"
    assert bot.gate.strangers_refused == 1
    api.press_button("confirm:x:yes", chat_id=STRANGER + 1, user_id=STRANGER + 1)
    answer = await api.wait_for("answerCallbackQuery")
    assert answer.params.get("text") == "not authorized"
    press = [e for e in outbox.events if e[1] == "stranger"][-1]
    assert press[3] == {"text": "(button) confirm:x:yes"}
    assert bot.gate.strangers_refused == 2
