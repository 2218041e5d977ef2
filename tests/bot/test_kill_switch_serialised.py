"""/flatten, /cancelall and /resume are serialised (issue 8, item 3), end to end: the real
python-telegram-bot on the fake Bot API, the real engine, ib_async and ibsim.

Before: a /cancelall confirmed while the kill switch was writing its closing order's intent (a
slow disk) abandoned that close ("NOT flat: AAPL 5: not sent: cancelled before it was sent"),
and a /resume during the flatten let the strategy trade again while positions were closed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from engine.domain import EngineState, Side
from engine.events import CommandEvent
from tests.bot.harness import OPERATOR
from tests.bot.test_engine_e2e import bot_on_engine, open_positions, prompt_for, reply_to
from tests.engine.conftest import next_event


async def test_cancelall_and_resume_during_a_flatten_change_nothing(tmp_path: Path) -> None:
    async with bot_on_engine(tmp_path, symbols="AAPL", quiet=True) as rig:
        await open_positions(rig.engine, [("AAPL", Side.BUY, 5)])
        writing, disk_free = asyncio.Event(), asyncio.Event()
        write_durable = rig.engine.writer.write_durable

        async def slow_disk(statement, urgent=True):  # the close's intent takes a while
            if statement[0].startswith("INSERT INTO orders") and not disk_free.is_set():
                writing.set()
                await disk_free.wait()
            return await write_durable(statement, urgent=urgent)

        rig.engine.writer.write_durable = slow_disk
        events = rig.control.subscribe()
        flatten_id, flatten_buttons = await prompt_for(rig.api, "/flatten")
        rig.api.press_button(flatten_buttons["yes"], chat_id=OPERATOR, message_id=flatten_id)
        await asyncio.wait_for(writing.wait(), 10)  # the kill switch's close is being written

        cancel_id, cancel_buttons = await prompt_for(rig.api, "/cancelall")
        rig.api.press_button(cancel_buttons["yes"], chat_id=OPERATOR, message_id=cancel_id)
        await next_event(events, CommandEvent, lambda e: e.command == "cancel_all")
        await asyncio.sleep(0.05)  # let a /cancelall that does not wait do its damage

        refused = await reply_to(rig.api, "/resume", "flatten in progress")
        assert "Resumed" not in refused.text
        assert rig.engine.risk.state is EngineState.PAUSED

        disk_free.set()
        done = await rig.api.wait_for(
            "editMessageText",
            lambda r: r.int("message_id") == flatten_id and "flat (bot)" in r.text,
            timeout=20,
        )
        assert "NOT flat" not in done.text, done.text
        assert "closed AAPL 5" in done.text, done.text
        await rig.api.wait_for(
            "editMessageText", lambda r: r.int("message_id") == cancel_id and "ancel" in r.text,
            timeout=20,
        )
        await rig.engine.wait_positions_settled(5)
        assert rig.gateway.positions() == {}
        assert rig.engine.risk.state is EngineState.PAUSED  # the refused /resume changed nothing
        rows = await rig.engine.journal.recent_events(limit=100)
        assert any(r.kind == "command" and r.message.startswith("resume by") for r in rows)
