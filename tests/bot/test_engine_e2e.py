"""The Telegram front-end on the REAL engine, end to end:

real python-telegram-bot ↔ fake Bot API (127.0.0.1) ↔ TelegramFrontEnd ↔ `Control(engine)` ↔
ib_async ↔ ibsim. The engine's journal is the front-end's outbox, as in production.
ibsim runs at 600× with 5-second bars; every wait is on an event, bounded.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Stock

from bot.telegram.app import TelegramFrontEnd
from engine.control import Control
from engine.domain import EngineState, OrderStatus, OrderType, Side
from engine.engine import Engine
from engine.events import CommandEvent, FillEvent, RiskEvent
from engine.trader import Trader
from ibsim import SimGateway
from ibsim.clock import default_start
from tests.bot.harness import OPERATOR, running_front_end
from tests.engine.conftest import (
    make_settings,
    next_event,
    open_positions,
    running_engine,
    sim_gateway,
)
from tests.fakebotapi import FakeBotAPI, Request

OTHER_CLIENT_ID = 7

# For tests that set up positions by hand: the strategy must leave them alone. With 5-second
# bars any SMA pair can cross within a second at 600× (a crossing below closes a long, one
# above buys), so these tests trade hourly bars and start the market at 11:01 New York: the
# first bar the strategy could act on closes at 12:00, ~6 s of wall time away. (Not earlier:
# the first regular-hours hourly bar starts at 09:30, and before 11:00 the engine seeds it as
# unfinished and closes it at the first live 5-second bar, which can trade at once.)
QUIET = {"bar_size": "1 hour", "strategy_params": "fast=2,slow=3"}
QUIET_START_OFFSET = 91 * 60  # after ibsim's default start, 09:30 New York


@dataclass
class Rig:
    gateway: SimGateway
    engine: Engine
    control: Control
    api: FakeBotAPI
    bot: TelegramFrontEnd


@asynccontextmanager
async def bot_on_engine(
    tmp_path: Path, quiet: bool = False, **overrides: Any
) -> AsyncIterator[Rig]:
    """ibsim + the real engine + the Telegram front-end on the fake Bot API. `quiet`: the
    strategy cannot trade during the test (see QUIET)."""
    settings = make_settings(tmp_path, **({**QUIET, **overrides} if quiet else overrides))
    start = default_start() + QUIET_START_OFFSET if quiet else None
    async with (
        sim_gateway(start=start) as gateway,
        running_engine(gateway, settings) as (engine, control),
        FakeBotAPI() as api,
        running_front_end(api, control, engine.journal, {OPERATOR}) as bot,
    ):
        yield Rig(gateway, engine, control, api, bot)


# --- helpers ---------------------------------------------------------------------------------


async def reply_to(api: FakeBotAPI, command: str, needle: str, timeout: float = 10.0) -> Request:
    """Send `command` from the operator; the first sendMessage after it containing `needle`."""
    since = time.monotonic()
    api.inject_command(command, chat_id=OPERATOR)
    return await api.wait_for(
        "sendMessage",
        lambda r: r.at >= since and r.int("chat_id") == OPERATOR and needle in r.text,
        timeout=timeout,
    )


async def prompt_for(api: FakeBotAPI, command: str) -> tuple[int, dict[str, str]]:
    """Send an acting command; the prompt's message id and its buttons {"yes"|"cancel": data}."""
    since = time.monotonic()
    api.inject_command(command, chat_id=OPERATOR)
    prompt = await api.wait_for(
        "sendMessage", lambda r: r.at >= since and "reply_markup" in r.params
    )
    assert "[SIM]" in prompt.text and "Confirm" in prompt.text
    buttons = {text.split(",")[0].split()[-1].lower(): data for text, data in api.buttons(prompt)}
    return prompt.result["message_id"], buttons


async def confirm(api: FakeBotAPI, command: str, final: str, timeout: float = 20.0) -> Request:
    """/flatten-like command → press yes → the edit of the prompt that contains `final`."""
    message_id, buttons = await prompt_for(api, command)
    api.press_button(buttons["yes"], chat_id=OPERATOR, message_id=message_id)
    return await api.wait_for(
        "editMessageText",
        lambda r: r.int("message_id") == message_id and final in r.text,
        timeout=timeout,
    )


async def ib_event_until(event: Any, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait on an ib_async (eventkit) event until `predicate()` holds."""
    if predicate():
        return
    done = asyncio.get_running_loop().create_future()

    def check(*_: object) -> None:
        if not done.done() and predicate():
            done.set_result(None)

    event += check
    try:
        await asyncio.wait_for(done, timeout)
    finally:
        event -= check


async def rest_limit(engine: Engine, symbol: str, side: Side, quantity: float = 1) -> str:
    """A limit order 20% away from the market: it rests."""
    last = engine.portfolio.last_price[symbol]
    limit = round(last * (0.8 if side is Side.BUY else 1.2), 2)
    order = await engine.orders.submit(symbol, side, quantity, "resting", OrderType.LIMIT, limit)
    assert await engine.orders.wait_status(order.order_ref, {OrderStatus.SUBMITTED}, 10), order
    return order.order_ref


def money(value: float) -> str:
    return f"{value:,.2f}"


# --- /flatten ---------------------------------------------------------------------------------


async def test_flatten_confirmed_ends_flat_on_ibsim(tmp_path: Path) -> None:
    async with bot_on_engine(tmp_path, symbols="AAPL,MSFT,SPY", quiet=True) as rig:
        await open_positions(
            rig.engine, [("AAPL", Side.BUY, 5), ("MSFT", Side.SELL, 7), ("SPY", Side.BUY, 3)]
        )
        await rest_limit(rig.engine, "AAPL", Side.BUY)
        await rest_limit(rig.engine, "MSFT", Side.SELL)
        assert rig.gateway.positions() == {"AAPL": 5, "MSFT": -7, "SPY": 3}
        assert len(rig.gateway.open_orders) == 2

        done = await confirm(rig.api, "/flatten", "flat (bot)")

        assert done.text.startswith("<b>[SIM]</b>")
        title = re.search(r"flat \(bot\): closed ([^<]*)", done.text)
        assert title is not None, done.text
        closed = dict(item.rsplit(" ", 1) for item in title.group(1).split(", "))
        assert closed == {"AAPL": "5", "MSFT": "7", "SPY": "3"}
        assert "cancelled 2 orders" in done.text
        assert "reply_markup" not in done.params  # the buttons are gone
        await rig.engine.wait_positions_settled(5)
        assert rig.gateway.positions() == {}
        assert rig.gateway.open_orders == []
        assert all(p.quantity == 0 for p in (await rig.control.positions()).positions)
        assert (await rig.control.status()).state is EngineState.PAUSED


async def test_flatten_all_cancels_other_clients_orders_and_closes_foreign_positions(
    tmp_path: Path,
) -> None:
    async with bot_on_engine(tmp_path, symbols="AAPL,MSFT", quiet=True) as rig:
        await open_positions(rig.engine, [("AAPL", Side.BUY, 5)])
        await rest_limit(rig.engine, "MSFT", Side.BUY)
        other = IB()
        await other.connectAsync("127.0.0.1", rig.gateway.port, clientId=OTHER_CLIENT_ID)
        try:
            # By hand, from another API client: a position in a symbol the bot does not trade,
            # and a resting order.
            nvda, tsla = Stock("NVDA", "SMART", "USD"), Stock("TSLA", "SMART", "USD")
            await other.qualifyContractsAsync(nvda, tsla)
            bought = other.placeOrder(nvda, MarketOrder("BUY", 3))
            await ib_event_until(bought.statusEvent, bought.isDone)
            assert bought.orderStatus.status == "Filled"
            manual = other.placeOrder(
                tsla, LimitOrder("BUY", 2, round(rig.gateway.price("TSLA") * 0.8, 2))
            )
            await ib_event_until(
                manual.statusEvent, lambda: manual.orderStatus.status == "Submitted"
            )
            # The engine sees the account's positions, NVDA included.
            ib = rig.engine.broker.ib
            await ib_event_until(
                ib.positionEvent,
                lambda: (
                    {p.symbol: p.quantity for p in rig.engine.broker.positions()}.get("NVDA") == 3
                ),
            )
            assert rig.gateway.positions() == {"AAPL": 5, "NVDA": 3}
            assert {o.client_id for o in rig.gateway.open_orders} == {
                rig.engine.settings.ib_client_id,
                OTHER_CLIENT_ID,
            }

            done = await confirm(rig.api, "/flatten all", "flat (account)")

            title = re.search(r"flat \(account\): closed ([^<]*)", done.text)
            assert title is not None, done.text
            closed = dict(item.rsplit(" ", 1) for item in title.group(1).split(", "))
            assert closed == {"AAPL": "5", "NVDA": "3"}
            await ib_event_until(manual.statusEvent, manual.isDone)
            assert manual.orderStatus.status == "Cancelled"
            await rig.engine.wait_positions_settled(5)
            assert rig.gateway.positions() == {}
            assert rig.gateway.open_orders == []
        finally:
            other.disconnect()


async def test_stale_queued_flatten_is_not_executed(tmp_path: Path) -> None:
    async with bot_on_engine(tmp_path, symbols="AAPL,MSFT", quiet=True) as rig:
        await open_positions(rig.engine, [("AAPL", Side.BUY, 5), ("MSFT", Side.SELL, 4)])
        resting = await rest_limit(rig.engine, "AAPL", Side.BUY)
        commands = rig.control.subscribe()
        since = time.monotonic()
        rig.api.inject_command("/flatten", chat_id=OPERATOR, date=int(time.time()) - 600)
        ignored = await rig.api.wait_for(
            "sendMessage", lambda r: r.at >= since and "Ignored /flatten" in r.text
        )
        assert "[SIM]" in ignored.text and re.search(r"10m \d+s ago", ignored.text), ignored.text
        # A later command is answered, so the stale one was not merely delayed.
        await reply_to(rig.api, "/status", "Status: RUNNING")
        assert not rig.api.calls("sendMessage", lambda r: "reply_markup" in r.params)
        assert not rig.api.calls("editMessageText")
        assert rig.gateway.positions() == {"AAPL": 5, "MSFT": -4}
        assert [o.order_ref for o in rig.engine.orders.working()] == [resting]
        assert len(rig.gateway.open_orders) == 1
        assert rig.engine.risk.state is EngineState.RUNNING
        assert not any(isinstance(e, CommandEvent) for e in drain(commands))
        events = await rig.engine.journal.recent_events(limit=50)
        kinds = [e.kind for e in events]
        assert "stale_command" in kinds and "command" not in kinds


def drain(subscription: Any) -> list[object]:
    events = []
    while subscription.pending():
        events.append(subscription.get_nowait())
    return events


# --- alerts -----------------------------------------------------------------------------------


async def test_fill_alerts_match_the_journal(tmp_path: Path) -> None:
    """The run's first buy and first sell are each alerted on their own (a burst of more than
    BURST_LIMIT fills becomes a digest: the fills taken are the journal's first, not the first
    the test happens to hear of once subscribed, which under load can be the sixth)."""
    async with bot_on_engine(tmp_path, symbols="AAPL") as rig:
        events = rig.control.subscribe()
        await next_event(events, FillEvent, lambda e: e.fill.side is Side.SELL and e.final)
        await rig.engine.writer.flush()
        fills = await rig.engine.journal.fills()
        buy = next(f for f in fills if f.side is Side.BUY)
        sell = next(f for f in fills if f.side is Side.SELL and f.time >= buy.time)
        for fill, position_after in ((buy, 10), (sell, 0)):
            alert = await rig.api.wait_for(
                "sendMessage", lambda r, ref=fill.order_ref: f"ref {ref}" in r.text
            )
            [row] = await rig.engine.journal.fills_for(fill.order_ref)
            assert row.exec_id == fill.exec_id and row.commission is not None
            side = row.side.value
            assert alert.text.startswith("<b>[SIM]</b>")
            assert f"Filled: {side} 10 AAPL" in alert.text
            assert f"{side} 10 AAPL @ {money(row.price)}" in alert.text
            assert f"commission: {money(row.commission)}" in alert.text
            assert f"position after: {position_after}" in alert.text
            assert "not reported yet" not in alert.text
            if row.realized_pnl is not None:
                assert f"realized PnL: {row.realized_pnl:+,.2f}" in alert.text
        [closing] = await rig.engine.journal.fills_for(sell.order_ref)
        assert closing.realized_pnl is not None  # closing a long realizes PnL


# --- read-only commands -----------------------------------------------------------------------


async def test_read_commands_answer_from_the_real_engine(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="bot")
    async with bot_on_engine(tmp_path, symbols="AAPL,MSFT", quiet=True) as rig:
        await open_positions(rig.engine, [("AAPL", Side.BUY, 5)])
        await rest_limit(rig.engine, "MSFT", Side.BUY, 2)
        api = rig.api
        since = time.monotonic()

        status = await reply_to(api, "/status", "Status: RUNNING")
        assert "connection: connected" in status.text and "account: DU1234567" in status.text
        assert "sma_cross (fast=2, slow=3" in status.text
        positions = await reply_to(api, "/positions", "Positions: 1")
        assert re.search(r"AAPL\s+5\s", positions.text), positions.text
        orders = await reply_to(api, "/orders", "Open orders: 1")
        assert re.search(r"MSFT\s+BUY\s+2\s+LMT", orders.text), orders.text
        pnl = await reply_to(api, "/pnl", "PnL ")
        assert "commissions: 1.00" in pnl.text and "net liquidation: " in pnl.text
        risk = await reply_to(api, "/risk", "Risk")
        assert "state: RUNNING" in risk.text and "stale data: none" in risk.text
        health = await reply_to(api, "/health", "Health: connected")
        assert re.search(r"AAPL\s+\d\d:\d\d:\d\d\s+[\dhms ]+\s+ok", health.text), health.text
        trades = await reply_to(api, "/trades", "Last 1 trades")
        assert re.search(r"B\s+5\s+AAPL", trades.text), trades.text
        quote = await reply_to(api, "/quote AAPL", "AAPL: ")
        found = re.search(r"bid ([\d,.]+)\s+ask ([\d,.]+)\s+last ([\d,.]+)", quote.text)
        assert found is not None, quote.text
        bid, ask, last = (float(x.replace(",", "")) for x in found.groups())
        assert 0 < bid <= ask and abs(last - rig.gateway.price("AAPL")) / last < 0.05

        chart_since = time.monotonic()
        api.inject_command("/chart AAPL", chat_id=OPERATOR)
        photo = await api.wait_for("sendPhoto", lambda r: r.at >= chart_since, timeout=15)
        assert photo.files["photo"].startswith(b"\x89PNG\r\n\x1a\n")
        assert "[SIM]" in photo.params["caption"] and "AAPL" in photo.params["caption"]

        replies = api.calls("sendMessage", lambda r: r.at >= since and r.int("chat_id") == OPERATOR)
        assert all(r.text.startswith("<b>[SIM]</b>") for r in replies)
        assert not [r.text for r in replies if "failed" in r.text or "⚠️" in r.text]
        assert not [r for r in caplog.records if r.name.startswith("bot")]


# --- pause / resume ---------------------------------------------------------------------------


async def test_pause_refuses_entries_then_resume(tmp_path: Path) -> None:
    async with bot_on_engine(tmp_path, symbols="AAPL") as rig:
        events = rig.control.subscribe()
        await next_event(events, FillEvent, lambda e: e.fill.side is Side.BUY)
        paused = await reply_to(rig.api, "/pause lunch break", "Paused (lunch break)")
        assert "[SIM]" in paused.text
        assert rig.engine.risk.state is EngineState.PAUSED
        refused = await next_event(
            events, RiskEvent, lambda e: e.kind == "refused" and "paused" in e.message
        )
        assert "AAPL" in refused.message
        alert = await rig.api.wait_for(
            "sendMessage", lambda r: "Risk refused AAPL" in r.text and "paused" in r.text
        )
        assert "[SIM]" in alert.text
        resumed = await reply_to(rig.api, "/resume", "Resumed: RUNNING")
        assert "[SIM]" in resumed.text
        assert rig.engine.risk.state is EngineState.RUNNING
        # Entries are taken again: a new BUY fills after the resume.
        await next_event(events, FillEvent, lambda e: e.fill.side is Side.BUY)
        await rig.engine.writer.flush()
        kinds = [(e.kind, e.message) for e in await rig.engine.journal.recent_events(limit=200)]
        assert any(k == "command" and m.startswith("pause by telegram:42") for k, m in kinds)
        assert any(k == "command" and m.startswith("resume by telegram:42") for k, m in kinds)


async def test_a_telegram_outage_of_ten_minutes_while_trading_loses_no_alert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fake Bot API fails for ten simulated minutes (1 s of wall time at 600x) while the
    strategy trades: 502s, then 429s, then requests that hang. The engine never waits for
    Telegram (it keeps trading through the outage), and afterwards every fill is alerted
    exactly once (alone, or as a line of a digest when many come at once)."""
    async with bot_on_engine(tmp_path, symbols="AAPL") as rig:
        events = rig.control.subscribe(maxsize=10_000)
        await next_event(events, FillEvent, lambda e: e.final)  # trading
        began = time.monotonic()
        for kind in ("502", "429", "hang"):
            rig.api.fail(kind, "sendMessage", seconds=1 / 3, retry_after=1)
            await asyncio.sleep(1 / 3)  # the outage is wall time: its faults expire by time
        during = [e for e in _drain(events) if isinstance(e, FillEvent) and e.final]
        assert during, "the engine stopped trading while Telegram was down"
        assert rig.api.calls("sendMessage", lambda r: r.at >= began and r.status != 200)
        monkeypatch.setattr(Trader, "decide", lambda *_: None)  # no new trades from here
        engine = rig.engine
        assert await engine.orders.wait_until(lambda: not engine.orders.working(), 10)
        await engine.writer.flush()
        filled = len({fill.order_ref for fill in await engine.journal.fills()})

        def alerted() -> int:
            return sum(r.text.count("Filled: ") for r in rig.api.sent(OPERATOR))

        await rig.api.wait_for("sendMessage", lambda _: alerted() >= filled, timeout=30)
        assert alerted() == filled


def _drain(subscription: Any) -> list[Any]:
    drained = []
    while subscription.pending():
        drained.append(subscription.get_nowait())
    return drained
