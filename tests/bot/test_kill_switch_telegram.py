"""The kill switch as the user meets it (issue 8, items 1 and 3), end to end: the real
python-telegram-bot on the fake Bot API, the real engine, ib_async and ibsim.

Before: a /cancelall confirmed while the kill switch was writing its closing order's intent (a
slow disk) abandoned that close ("NOT flat: AAPL 5: not sent: cancelled before it was sent"),
and a /resume during the flatten let the strategy trade again while positions were closed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from engine.domain import ConnectionState, EngineState, Side
from engine.events import CommandEvent, ConnectionEvent, FillEvent
from tests.bot.harness import OPERATOR
from tests.bot.test_engine_e2e import bot_on_engine, confirm, prompt_for, reply_to
from tests.engine.conftest import next_event, open_positions


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


async def test_flatten_during_an_ib_outage_says_it_waits_and_never_doubles(tmp_path: Path) -> None:
    """Issue 8, item 1, as the user sees it: the report says the closes wait for IB (instead
    of inviting a second /flatten), a second /flatten after a drop sends nothing, and when IB is
    back the first closes fill: flat, not reversed."""
    async with bot_on_engine(tmp_path, symbols="AAPL,MSFT", quiet=True) as rig:
        await open_positions(rig.engine, [("AAPL", Side.BUY, 5), ("MSFT", Side.SELL, 7)])
        events = rig.control.subscribe()
        rig.gateway.connectivity_lost(3600)
        await next_event(events, ConnectionEvent, lambda e: e.state is ConnectionState.DEGRADED)
        first = await confirm(rig.api, "/flatten", "waiting for IB")
        assert "NOT flat yet (bot): waiting for IB" in first.text
        assert "AAPL SELL 5" in first.text and "MSFT BUY 7" in first.text
        assert "a second /flatten would not help" in first.text
        sent: list[str] = []
        rig.gateway.hooks.order_received.connect(lambda r: sent.append(r.request.order_ref))
        rig.gateway.drop_connections()
        await next_event(events, ConnectionEvent, lambda e: e.state is ConnectionState.DISCONNECTED)
        await next_event(events, ConnectionEvent,
                         lambda e: e.state is not ConnectionState.DISCONNECTED)
        second = await confirm(rig.api, "/flatten", "waiting for IB")
        assert "AAPL SELL 5" in second.text and "MSFT BUY 7" in second.text
        assert sent == [], "a second close was sent"
        rig.gateway.restore_connectivity()
        await next_event(events, FillEvent, lambda e: e.fill.symbol == "AAPL")
        await next_event(events, FillEvent, lambda e: e.fill.symbol == "MSFT")
        await rig.engine.wait_positions_settled(5)
        assert rig.gateway.positions() == {}
