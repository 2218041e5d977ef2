"""The gate's rules one by one (bot/telegram/auth.py): who is served, who may act, which
commands are ours. End to end where the rule shows through the fake Bot API (a bot account in
an allowed group), with real python-telegram-bot objects where it is a pure decision."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from telegram import Chat, Message, MessageEntity, User

from bot.alerts import Alert
from bot.telegram.auth import Gate, addressee, command_of, who
from tests.bot.fake_control import FakeControl
from tests.bot.harness import OPERATOR, READER, STRANGER, MemoryOutbox, running_front_end
from tests.fakebotapi import FakeBotAPI

GROUP = -1001
OTHER_BOT = 5555


def _gate(allowed: set[int], operators: set[int]) -> Gate:
    async def alert(_: Alert) -> None:
        return None

    async def reply(_chat: int, _doc: object) -> None:
        return None

    return Gate(allowed, operators, lambda command: command == "flatten", MemoryOutbox(),
                alert, reply)


def _user(user_id: int, is_bot: bool = False, username: str | None = None) -> User:
    return User(user_id, "Someone", is_bot, username=username)


def _chat(chat_id: int, kind: str) -> Chat:
    return Chat(chat_id, kind)


@pytest.mark.parametrize(
    ("chat", "user", "allowed"),
    [
        (_chat(OPERATOR, Chat.PRIVATE), _user(OPERATOR), True),  # the chat's owner
        (_chat(OPERATOR, Chat.PRIVATE), _user(READER), False),  # someone else in it
        (_chat(STRANGER, Chat.PRIVATE), _user(STRANGER), False),  # a chat not allowed
        (_chat(GROUP, Chat.GROUP), _user(READER), True),  # a member of an allowed group
        (_chat(GROUP, Chat.SUPERGROUP), _user(STRANGER), True),
        (_chat(-2002, Chat.GROUP), _user(OPERATOR), False),  # an operator, in another group
        (_chat(GROUP, Chat.CHANNEL), _user(READER), False),  # a channel is not a group
        (_chat(GROUP, Chat.GROUP), _user(OTHER_BOT, is_bot=True), False),  # a bot account
        (_chat(OPERATOR, Chat.PRIVATE), _user(OPERATOR, is_bot=True), False),
        (None, _user(OPERATOR), False),
        (_chat(OPERATOR, Chat.PRIVATE), None, False),
    ],
)
def test_who_is_served(chat: Chat | None, user: User | None, allowed: bool) -> None:
    gate = _gate({OPERATOR, GROUP}, {OPERATOR})
    assert gate.is_allowed(chat, user) is allowed


def test_only_operators_act_when_operators_are_set() -> None:
    gate = _gate({OPERATOR, READER}, {OPERATOR})
    assert gate.may_act(_user(OPERATOR))
    assert not gate.may_act(_user(READER))


def test_everyone_served_acts_when_no_operator_is_set() -> None:
    gate = _gate({OPERATOR, READER}, set())
    assert gate.may_act(_user(READER)) and gate.may_act(_user(OPERATOR))


def _message(text: str, entities: tuple[MessageEntity, ...]) -> Message:
    return Message(1, datetime.now(UTC), _chat(OPERATOR, Chat.PRIVATE), text=text,
                   entities=entities)


def test_a_command_is_a_bot_command_entity_at_the_start() -> None:
    command = MessageEntity(MessageEntity.BOT_COMMAND, 0, 8)
    assert command_of(_message("/flatten all", (command,))) == "flatten"
    assert command_of(_message("x /flatten", (MessageEntity(MessageEntity.BOT_COMMAND, 2, 8),))) \
        is None
    assert command_of(_message("/flatten", (MessageEntity(MessageEntity.BOLD, 0, 8),))) is None
    assert command_of(_message("/flatten", ())) is None
    assert command_of(None) is None


def test_addressee_is_the_bot_named_after_the_at() -> None:
    named = _message("/flatten@other_bot all", (MessageEntity(MessageEntity.BOT_COMMAND, 0, 18),))
    assert addressee(named) == "other_bot"
    plain = _message("/flatten all", (MessageEntity(MessageEntity.BOT_COMMAND, 0, 8),))
    assert addressee(plain) is None
    assert addressee(_message("hello", ())) is None


def test_who_names_a_user_for_the_journal() -> None:
    assert who(_user(42, username="alice")) == "telegram:42 @alice"
    assert who(_user(42)) == "telegram:42"
    assert who(None) == "telegram:unknown"


def _bot_command(text: str, chat_id: int, chat_type: str, user_id: int) -> dict[str, object]:
    return {
        "message": {
            "message_id": 9001,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": chat_type},
            "from": {"id": user_id, "is_bot": True, "first_name": "Other", "username": "x_bot"},
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
        }
    }


async def test_a_bot_account_in_an_allowed_group_is_not_served(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    async with running_front_end(api, control, outbox, {GROUP}, set()):
        api.inject_update(_bot_command("/flatten all", GROUP, "group", OTHER_BOT))
        api.inject_update(_bot_command("/status", GROUP, "group", OTHER_BOT))
        # A member's command after them is answered: the bot's were seen and refused first.
        api.inject_command("/status", chat_id=GROUP, user_id=READER, chat_type="group")
        await api.wait_for("sendMessage", lambda r: "Status" in r.text)
    assert control.called("flatten") == []
    assert len(control.called("status")) == 1
    assert outbox.kinds().count("stranger") == 2
    assert not api.calls("sendMessage", lambda r: "flatten" in r.text.lower()
                         and "confirm" in r.text.lower())
