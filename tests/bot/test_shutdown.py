"""Shutdown order: commands stop and a running flatten finishes before the engine stops."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from bot.runner import shut_down
from tests.bot.fake_control import FakeControl
from tests.bot.harness import OPERATOR, MemoryOutbox, running_front_end
from tests.bot.test_telegram_confirm import prompt_for
from tests.fakebotapi import FakeBotAPI


@dataclass
class Engine:
    """Stands in for the engine: notes whether a flatten was still running when it stopped."""

    control: FakeControl
    flatten_done_at_stop: list[bool] = field(default_factory=list)

    async def stop(self) -> None:
        self.flatten_done_at_stop.append(self.control.flatten_finished.is_set())


async def test_a_running_flatten_finishes_before_the_engine_stops(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    control.flatten_delay = 0.2
    engine = Engine(control)
    async with running_front_end(api, control, outbox) as bot:
        prompt, buttons = await prompt_for(api, "/flatten")
        api.press_button(buttons["yes"], chat_id=OPERATOR, message_id=prompt.result["message_id"])
        await asyncio.wait_for(control.flatten_started.wait(), 5)
        await shut_down(engine, bot)
        assert engine.flatten_done_at_stop == [True]
        since = time.monotonic()
        api.inject_command("/status", chat_id=OPERATOR)  # no longer taken
    report = await api.wait_for(
        ("sendMessage", "editMessageText"), lambda r: "flat (bot)" in r.text
    )
    assert "closed AAPL 10, MSFT 20" in report.text
    assert not api.calls("sendMessage", lambda r: r.at >= since and "Status" in r.text)


async def test_shutdown_without_a_flatten_is_quick(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> None:
    engine = Engine(control)
    async with running_front_end(api, control, outbox) as bot:
        started = time.monotonic()
        await shut_down(engine, bot)
        assert time.monotonic() - started < 1.0
    assert engine.flatten_done_at_stop == [False]
