"""Anonymous group admins (GroupAnonymousBot, posting as the group) are members of an allowed
group whose user id cannot be known: served read-only, asked to post as themselves to act when
operator ids are set, acting like every member when none are; never a stranger. Posting as
another chat (a channel) stays refused."""

from __future__ import annotations

import time

from tests.bot.fake_control import FakeControl
from tests.bot.harness import OPERATOR, READER, MemoryOutbox, running_front_end
from tests.fakebotapi import FakeBotAPI

GROUP = -1001000
CHANNEL = -1002000
OTHER_GROUP = -1003000


def _no_security_alert(api: FakeBotAPI, outbox: MemoryOutbox) -> None:
    assert "stranger" not in outbox.kinds()
    assert not api.calls("sendMessage", lambda r: "Unauthorized" in r.text)
    assert not api.calls("sendMessage", lambda r: r.text == "not authorized")


async def test_anonymous_admins_read_and_are_asked_to_post_as_themselves_to_act(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    async with running_front_end(api, control, outbox, {GROUP}, {OPERATOR}):
        api.inject_command_as_chat("/status", GROUP)
        await api.wait_for("sendMessage", lambda r: "Status" in r.text)
        for command in ("/flatten all", "/pause", "/resume", "/cancelall"):
            since = time.monotonic()
            api.inject_command_as_chat(command, GROUP)
            reply = await api.wait_for("sendMessage", lambda r, since=since: r.at >= since)
            assert reply.int("chat_id") == GROUP
            assert "needs an operator" in reply.text and "post as yourself" in reply.text
        api.inject_command_as_chat("/positions", GROUP)
        await api.wait_for("sendMessage", lambda r: "Positions" in r.text)
    assert control.called("flatten") == [] and control.called("pause") == []
    assert control.called("resume") == [] and control.called("cancel_all") == []
    assert not api.calls("sendMessage", lambda r: "reply_markup" in r.params)
    _no_security_alert(api, outbox)


async def test_with_no_operator_ids_an_anonymous_admin_acts_like_every_member(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    """No operator list: membership of the allowed group is the authority, as for everyone.
    The confirm press shows who it is, and the journal names them."""
    async with running_front_end(api, control, outbox, {GROUP}, set()):
        api.inject_command_as_chat("/flatten", GROUP)
        prompt = await api.wait_for("sendMessage", lambda r: "reply_markup" in r.params)
        yes = next(data for text, data in api.buttons(prompt) if "Yes" in text)
        message_id = prompt.result["message_id"]
        api.press_button(yes, chat_id=GROUP, message_id=message_id, user_id=READER)
        await api.wait_for("editMessageText", lambda r: "flat (bot)" in r.text)
    [(by, scope)] = control.called("flatten")
    assert by == f"telegram:{READER} (asked by telegram:anonymous admin of {GROUP})"
    assert scope == "bot"
    _no_security_alert(api, outbox)


async def test_posting_as_another_chat_stays_refused(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    async with running_front_end(api, control, outbox, {GROUP}, set()):
        api.inject_command_as_chat("/flatten all", GROUP, sender_chat_id=CHANNEL)  # a channel
        await api.wait_for("sendMessage", lambda r: r.text == "not authorized")
        api.inject_command_as_chat("/flatten all", OTHER_GROUP)  # an admin of another group
        await api.wait_for("sendMessage", lambda r: r.text == "not authorized", count=2)
        api.inject_command("/status", chat_id=GROUP, user_id=READER, chat_type="supergroup")
        await api.wait_for("sendMessage", lambda r: "Status" in r.text)
    assert control.called("flatten") == []
    assert outbox.kinds().count("stranger") == 2
    assert not api.calls("sendMessage", lambda r: "reply_markup" in r.params)


def _automatic_forward(api: FakeBotAPI, text: str) -> int:
    """What Telegram delivers in a discussion group when its linked channel posts `text`: sent
    by the service account "Telegram" (777000, not a bot), as the channel."""
    return api.inject_update({"message": {
        "message_id": int(time.monotonic() * 1000) % 1_000_000, "date": int(api.now()),
        "chat": {"id": GROUP, "type": "supergroup", "title": "Discussion"},
        "from": {"id": 777000, "is_bot": False, "first_name": "Telegram"},
        "sender_chat": {"id": CHANNEL, "type": "channel", "title": "Signals"},
        "is_automatic_forward": True,
        "text": text,
        "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
    }})  # fmt: skip


async def test_a_linked_channels_post_is_not_a_member(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    """The channel's admins need not be members of the allowed group: their post, forwarded
    into it by Telegram, is a stranger's (before: /pause was served, and with operator ids
    set /positions was answered)."""
    for operators in (set(), {OPERATOR}):
        async with running_front_end(api, control, outbox, {GROUP}, operators):
            since = time.monotonic()
            _automatic_forward(api, "/pause" if not operators else "/positions")
            reply = await api.wait_for(
                "sendMessage", lambda r, since=since: r.at >= since and r.int("chat_id") == GROUP
            )
            assert "Positions" not in reply.text
        assert control.called("pause") == [] and control.called("positions") == []
