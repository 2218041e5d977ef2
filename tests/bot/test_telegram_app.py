"""Connecting, staying connected and stopping, whatever Telegram answers."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from bot.alerts import Alert
from bot.messages.document import Doc
from bot.tasks import KeptAlive
from tests.bot.fake_control import FakeControl
from tests.bot.harness import OPERATOR, READER, STRANGER, MemoryOutbox, running_front_end
from tests.fakebotapi import FakeBotAPI, scope_key


@pytest.mark.parametrize(
    ("kind", "count", "error"),
    [("429", 1, "RetryAfter"), ("okfalse", 2, "KeyError"), ("409", 2, "Conflict")],
)
async def test_start_survives_any_getme_failure(
    api: FakeBotAPI,
    control: FakeControl,
    outbox: MemoryOutbox,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    count: int,
    error: str,
) -> None:
    api.fail(kind, "getMe", count=count, retry_after=1)
    async with running_front_end(api, control, outbox):  # start() returns, then goes online
        api.inject_command("/status", chat_id=OPERATOR)
        await api.wait_for("sendMessage", lambda r: "Status" in r.text)
    assert len(api.calls("getMe")) == count + 1
    if kind != "429":
        assert any(error in r.getMessage() for r in caplog.records)
    secret = api.token.split(":", 1)[1]
    assert all(
        secret not in r.getMessage() and "http" not in r.getMessage()
        for r in caplog.records
        if r.name.startswith("bot.")
    )


async def test_unreadable_answer_does_not_kill_alert_delivery(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    """A 200 with ok=false makes PTB raise a raw KeyError: retried like a 5xx, and stop()
    still completes."""
    async with running_front_end(api, control, outbox, {OPERATOR}) as bot:
        api.fail("okfalse", "sendMessage", count=1)
        await bot.delivery.submit(Alert("fills", Doc("first alert")))
        await api.wait_for("sendMessage", lambda r: "first alert" in r.text)
        await bot.delivery.submit(Alert("fills", Doc("second alert")))
        await api.wait_for("sendMessage", lambda r: "second alert" in r.text)
        await bot.delivery.wait_idle()
        assert bot.delivery.retries == 1 and bot.delivery.sender_restarts == 0
    assert not await outbox.outbox_pending("telegram")
    assert not bot.app.running


async def test_watchdog_survives_a_refused_token_while_restarting_polling(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    tune = {"poll_timeout": 1, "read_timeout": 30.0}
    async with running_front_end(api, control, outbox, {OPERATOR}, tune=tune) as bot:
        since = time.monotonic()
        api.fail("hang", "getUpdates", count=1)
        api.fail("401", "deleteWebhook", count=1)  # the restart's bootstrap: InvalidToken
        await api.wait_for("deleteWebhook", lambda r: r.at >= since, answered=False, timeout=5)
        api.inject_command("/status", chat_id=OPERATOR)
        await api.wait_for("sendMessage", lambda r: "Status" in r.text, timeout=10)
        assert bot.polling_restarts >= 2


async def test_a_background_task_that_dies_is_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[int] = []
    second_run = asyncio.Event()

    async def work() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise KeyError("result")
        second_run.set()
        await asyncio.Event().wait()

    kept = KeptAlive("test:work", work, restart_delay=0.01)
    kept.start()
    await asyncio.wait_for(second_run.wait(), 5)
    assert kept.restarts == 1 and kept.running
    assert any("test:work died (KeyError)" in r.getMessage() for r in caplog.records)
    caplog.set_level(logging.ERROR)
    await kept.stop()
    assert not kept.running


async def test_the_command_menu_is_shown_only_in_allowed_chats(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    group = -100
    api.menus[scope_key(None)] = [{"command": "flatten", "description": "an older version's"}]
    async with running_front_end(api, control, outbox, {OPERATOR, READER, group}, {OPERATOR}):
        pass
    assert api.menu() == []  # strangers see no menu at all
    for chat_id in (OPERATOR, group):
        assert {"status", "positions", "pause", "flatten", "cancelall"} <= set(api.menu(chat_id))
    assert "status" in api.menu(READER) and "flatten" not in api.menu(READER)
    assert not {"pause", "resume", "cancelall"} & set(api.menu(READER))
    assert api.menu(STRANGER) == []


async def test_a_chat_taken_off_the_allowed_list_loses_its_menu(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    """Telegram keeps a chat's menu until deleted: before, a group removed from
    TELEGRAM_ALLOWED_CHAT_IDS went on showing /flatten after the restart."""
    old_group = -100555
    async with running_front_end(api, control, outbox, {OPERATOR, old_group}, {OPERATOR}):
        pass
    assert "flatten" in api.menu(old_group)
    async with running_front_end(api, control, outbox, {OPERATOR}, {OPERATOR}):  # restarted
        pass
    assert api.menu(old_group) == []
    assert "flatten" in api.menu(OPERATOR)
