"""A group upgraded to a supergroup changes its chat id: the bot follows the move when Telegram
announces it from an allowed chat (its note, or a 400 on send), remembers it across a restart,
and tells the chat to update TELEGRAM_ALLOWED_CHAT_IDS. A stranger cannot add a chat this way."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bot.alerts import Alert
from bot.messages.document import Doc
from bot.telegram.migration import STATE_KEY
from engine.journal import Journal
from tests.bot.fake_control import FakeControl
from tests.bot.harness import OPERATOR, READER, MemoryOutbox, running_front_end
from tests.fakebotapi import FakeBotAPI

GROUP = -100
SUPERGROUP = -1001234567890
STRANGE_GROUP = -555
STRANGE_SUPERGROUP = -1009999


async def _serves_the_supergroup(api: FakeBotAPI, control: FakeControl) -> None:
    """Commands from the new id are served, /flatten included, and alerts reach it."""
    since = time.monotonic()
    api.inject_command("/status", chat_id=SUPERGROUP, user_id=READER, chat_type="supergroup")
    await api.wait_for("sendMessage", lambda r: r.at >= since and "Status" in r.text)
    api.inject_command("/flatten", chat_id=SUPERGROUP, user_id=OPERATOR, chat_type="supergroup")
    prompt = await api.wait_for("sendMessage", lambda r: "reply_markup" in r.params)
    assert prompt.int("chat_id") == SUPERGROUP and "Confirm flatten?" in prompt.text
    assert len(control.called("status")) >= 1


def _no_stranger(api: FakeBotAPI, outbox: MemoryOutbox) -> None:
    assert "stranger" not in outbox.kinds()
    assert not api.calls("sendMessage", lambda r: "not authorized" in r.text)
    assert not api.calls("sendMessage", lambda r: "Unauthorized" in r.text)


async def test_telegrams_note_in_the_allowed_group_moves_the_bot(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    async with running_front_end(api, control, outbox, {GROUP}, {OPERATOR}) as bot:
        api.migrate_chat(GROUP, SUPERGROUP)
        told = await api.wait_for("sendMessage", lambda r: "supergroup" in r.text)
        assert told.int("chat_id") == SUPERGROUP
        assert f"replace {GROUP} with {SUPERGROUP}" in told.text
        assert "TELEGRAM_ALLOWED_CHAT_IDS" in told.text
        await _serves_the_supergroup(api, control)
        await bot.pump.publish(Alert("security", Doc("a security alert")))
        alert = await api.wait_for("sendMessage", lambda r: "a security alert" in r.text)
        assert alert.int("chat_id") == SUPERGROUP
        await bot.delivery.wait_idle()
        assert "flatten" in api.menu(SUPERGROUP)
    assert json.loads(outbox.state[STATE_KEY]) == {str(GROUP): SUPERGROUP}
    assert outbox.kinds().count("chat_moved") == 1  # the new chat's note changed nothing more
    assert bot.delivery.failed == 0
    _no_stranger(api, outbox)


async def test_a_send_refused_with_chat_migrated_moves_the_bot(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    """No note reached the bot (it was down, say): the first alert's 400 says where the group
    went; that alert and everything after go there."""
    async with running_front_end(api, control, outbox, {GROUP}, {OPERATOR}) as bot:
        api.migrate_chat(GROUP, SUPERGROUP, announce=False)
        await bot.pump.publish(Alert("security", Doc("someone tried /flatten")))
        alert = await api.wait_for("sendMessage", lambda r: "someone tried" in r.text)
        assert alert.int("chat_id") == SUPERGROUP
        await api.wait_for("sendMessage", lambda r: "supergroup" in r.text)
        await _serves_the_supergroup(api, control)
        await bot.delivery.wait_idle()
    refused = api.calls("sendMessage", lambda r: r.status == 400)
    assert [r.int("chat_id") for r in refused] == [GROUP]  # asked once, followed since
    assert bot.delivery.failed == 0
    assert json.loads(outbox.state[STATE_KEY]) == {str(GROUP): SUPERGROUP}
    _no_stranger(api, outbox)


async def test_a_restart_follows_the_move_kept_in_the_journal(
    api: FakeBotAPI, control: FakeControl, tmp_path: Path
) -> None:
    journal = await Journal.open(tmp_path / "journal.sqlite3")
    try:
        async with running_front_end(api, control, journal, {GROUP}, {OPERATOR}):
            api.migrate_chat(GROUP, SUPERGROUP)
            await api.wait_for("sendMessage", lambda r: "supergroup" in r.text)
        since = time.monotonic()
        # The same settings (the old id still configured), a new process on the same journal.
        async with running_front_end(api, control, journal, {GROUP}, {OPERATOR}) as bot:
            await _serves_the_supergroup(api, control)
            await bot.pump.publish(Alert("security", Doc("after the restart")))
            alert = await api.wait_for("sendMessage", lambda r: "after the restart" in r.text)
            assert alert.int("chat_id") == SUPERGROUP
            assert "flatten" in api.menu(SUPERGROUP)
        assert not api.calls("sendMessage", lambda r: r.at >= since and r.status == 400)
        assert not api.calls("sendMessage", lambda r: r.at >= since and "supergroup" in r.text)
        assert not [e for e in await journal.recent_events(100) if e.kind == "stranger"]
    finally:
        await journal.close()


async def test_a_stranger_cannot_add_a_chat_by_a_move(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    async with running_front_end(api, control, outbox, {GROUP}, {OPERATOR}) as bot:
        api.migrate_chat(STRANGE_GROUP, STRANGE_SUPERGROUP)  # a group the bot does not serve
        # A note in a chat the bot does not serve, claiming to come from the allowed group.
        api.inject_update(
            {
                "message": {
                    "message_id": 1,
                    "date": int(api.now()),
                    "chat": {"id": STRANGE_SUPERGROUP, "type": "supergroup"},
                    "from": {"id": OPERATOR, "is_bot": False, "first_name": "A"},
                    "migrate_from_chat_id": GROUP,
                }
            }
        )
        api.inject_command("/status", chat_id=STRANGE_SUPERGROUP, chat_type="supergroup")
        refusal = await api.wait_for("sendMessage", lambda r: r.text == "not authorized")
        assert refusal.int("chat_id") == STRANGE_SUPERGROUP
        assert STRANGE_SUPERGROUP not in bot.gate.allowed_chat_ids
        assert bot.delivery.chat_ids == (GROUP,)
    assert control.called("status") == []
    assert STATE_KEY not in outbox.state and "chat_moved" not in outbox.kinds()


async def test_other_chats_are_not_disturbed_by_a_move(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    async with running_front_end(api, control, outbox, {GROUP, OPERATOR}, {OPERATOR}) as bot:
        api.migrate_chat(GROUP, SUPERGROUP)
        await api.wait_for("sendMessage", lambda r: "supergroup" in r.text, count=2)
        assert sorted(bot.delivery.chat_ids) == sorted((SUPERGROUP, OPERATOR))
        api.inject_command("/status", chat_id=OPERATOR)
        await api.wait_for(
            "sendMessage", lambda r: r.int("chat_id") == OPERATOR and "Status" in r.text
        )
    _no_stranger(api, outbox)
