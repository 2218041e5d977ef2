"""A future configured without an expiry follows the front month (issue 10): the roll is
alerted once; while the bot holds the old month it sends nothing for the new one (exits and
/flatten close the old month); once the old month is closed the bot trades the new one. End to
end: the engine, the real ib_async client, ibsim serving the chain as IB does."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.messages.events import front_month_doc
from engine.domain import Instrument, Side
from engine.engine import Engine
from engine.events import FrontMonthEvent, RiskEvent, RiskKind, Subscription
from engine.front_month import front
from engine.hours import ALWAYS_OPEN
from engine.ports import ContractInfo
from engine.trader import Trader
from ibsim import SimGateway
from tests.engine.conftest import (
    make_settings,
    next_event,
    open_positions,
    record_orders,
    running_engine,
    signal,
    sim_gateway,
)

# ES March 2027 (ESH7) trades until Friday 2027-03-19: a week before, at midnight Chicago time
# between Thursday the 11th and Friday the 12th, the front becomes June (ESM7).
CHICAGO = ZoneInfo("America/Chicago")
START = datetime(2027, 3, 11, 23, 0, tzinfo=CHICAGO)  # an hour before the roll, market open
JUST_BEFORE_ROLL = datetime(2027, 3, 11, 23, 59, 30, tzinfo=CHICAGO)


def es_settings(tmp_path: Path, symbols: str = "ES:FUT:CME", **overrides: Any):
    return make_settings(tmp_path, symbols=symbols, order_quantity=1, max_position=100,
                         outside_rth=True,
                         max_notional=100_000_000, **overrides)


@pytest.fixture(autouse=True)
def silent_strategy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The strategy says nothing, from the first bar on: the tests send the signals."""
    monkeypatch.setattr(Trader, "on_bar", lambda self, state, bar, trade: None)


def months_held(gateway: SimGateway) -> dict[str, float]:
    """The gateway's positions by month (ESH7, ESM7): by conId, as IB keeps them."""
    out = {}
    for position in gateway.account().positions.values():
        spec = gateway.universe.get(position.con_id)
        if spec is not None and position.quantity:
            out[spec.local_symbol] = position.quantity
    return out


async def roll(gateway: SimGateway) -> None:
    """Jump to half a minute before the roll; the clock runs on past midnight."""
    await gateway.advance(JUST_BEFORE_ROLL.timestamp() - gateway.clock.now())


async def next_bar(engine: Engine) -> None:
    """The next bar closed while trading (the strategy is silent: nothing else listens)."""
    closed = asyncio.Event()
    engine.market.on_closed = lambda state, bar, trade: trade and closed.set()
    await asyncio.wait_for(closed.wait(), 10)


def front_month_events(events: Subscription) -> list[FrontMonthEvent]:
    out = []
    while events.pending():
        event = events.get_nowait()
        if isinstance(event, FrontMonthEvent):
            out.append(event)
    return out


async def test_flat_it_follows_the_new_front_month(tmp_path: Path) -> None:
    async with sim_gateway(start=START) as gateway, running_engine(
        gateway, es_settings(tmp_path)
    ) as (engine, control):
        assert engine.broker.contract("ES").local_symbol == "ESH7"
        assert {m.local_symbol for m in engine.broker.chain("ES")} >= {"ESH7", "ESM7", "ESU7"}
        events = control.subscribe()
        await roll(gateway)
        rolled = await next_event(events, FrontMonthEvent, timeout=10)
        assert (rolled.old, rolled.new, rolled.switched) == ("ESH7", "ESM7", True)
        assert engine.broker.contract("ES").local_symbol == "ESM7"
        # The market data starts over on June: warmed up, a bar, then an entry goes there.
        await asyncio.wait_for(engine.front_months.restarts["ES"], 10)
        await next_bar(engine)
        assert await signal(engine, "ES", 2) is not None, engine.trader.recent_refusals
        assert months_held(gateway) == {"ESM7": 2}
        assert engine.portfolio.position("ES") == 2
        assert front_month_events(events) == []  # told once


async def test_holding_the_old_month_it_sends_nothing_for_the_new_one(tmp_path: Path) -> None:
    async with sim_gateway(start=START) as gateway, running_engine(
        gateway, es_settings(tmp_path)
    ) as (engine, control):
        await open_positions(engine, (("ES", Side.BUY, 5),))
        assert months_held(gateway) == {"ESH7": 5}
        events = control.subscribe()
        await roll(gateway)
        held = await next_event(events, FrontMonthEvent, timeout=10)
        assert (held.old, held.new, held.switched, held.held) == ("ESH7", "ESM7", False, 5)
        doc = front_month_doc(held, UTC)
        assert "hold ESH7 5, new front ESM7: close or roll by hand" in doc.blocks

        sent = record_orders(gateway)
        assert await signal(engine, "ES", 8) is None  # an entry: refused
        refused = await next_event(events, RiskEvent, lambda e: e.kind is RiskKind.REFUSED)
        assert "ESM7" in refused.message and "exits only" in refused.message
        assert await signal(engine, "ES", -5) is not None  # a reversal: only its exit half goes
        assert months_held(gateway) == {}
        assert len(sent) == 1
        assert engine.broker.contract("ES").local_symbol in ("ESH7", "ESM7")

        switched = await next_event(events, FrontMonthEvent, timeout=10)
        assert (switched.old, switched.new, switched.switched) == ("ESH7", "ESM7", True)
        await asyncio.wait_for(engine.front_months.restarts["ES"], 10)
        await next_bar(engine)
        assert await signal(engine, "ES", 3) is not None, engine.trader.recent_refusals
        assert months_held(gateway) == {"ESM7": 3}
        assert front_month_events(events) == []  # each told once


async def test_flatten_closes_the_old_month(tmp_path: Path) -> None:
    async with sim_gateway(start=START) as gateway, running_engine(
        gateway, es_settings(tmp_path)
    ) as (engine, control):
        await open_positions(engine, (("ES", Side.SELL, 2),))
        events = control.subscribe()
        await roll(gateway)
        await next_event(events, FrontMonthEvent, lambda e: not e.switched, timeout=10)
        sent = record_orders(gateway)
        await control.flatten(by="test")
        assert months_held(gateway) == {}
        assert len(sent) == 1
        switched = await next_event(events, FrontMonthEvent, timeout=10)
        assert switched.switched and switched.new == "ESM7"


async def test_an_explicit_expiry_is_traded_as_given(tmp_path: Path) -> None:
    settings = es_settings(tmp_path, symbols="ES:FUT:CME:202706")
    async with sim_gateway(start=START) as gateway, running_engine(
        gateway, settings
    ) as (engine, _):
        assert engine.broker.contract("ES").local_symbol == "ESM7"
        await open_positions(engine, (("ES", Side.BUY, 1),))
        assert months_held(gateway) == {"ESM7": 1}
        assert engine.front_months.held_back == {}


async def test_a_restart_holding_the_old_month_keeps_it_until_closed(tmp_path: Path) -> None:
    """Stopped before the roll with ESH7 held, started after it: the held month is followed
    (the position stays the bot's ES, as the journal knows it), for exits only."""
    settings = es_settings(tmp_path)
    async with sim_gateway(start=START) as gateway:
        async with running_engine(gateway, settings) as (engine, _):
            await open_positions(engine, (("ES", Side.BUY, 4),))
        await roll(gateway)
        await gateway.advance(60)
        async with running_engine(gateway, settings) as (engine, control):
            events = control.subscribe()
            assert engine.broker.contract("ES").local_symbol == "ESH7"
            assert engine.front_months.held_back["ES"].local_symbol == "ESM7"
            assert engine.portfolio.position("ES") == 4
            assert engine.risk.state.value == "RUNNING"  # the audit found nothing to explain
            sent = record_orders(gateway)
            assert await signal(engine, "ES", 5) is None
            assert await signal(engine, "ES", 0) is not None
            assert months_held(gateway) == {} and len(sent) == 1
            switched = await next_event(events, FrontMonthEvent, timeout=10)
            assert switched.switched and switched.new == "ESM7"


def test_the_front_is_the_nearest_expiry_more_than_a_week_away() -> None:
    def month(name: str, expiry: date) -> ContractInfo:
        return ContractInfo(Instrument("ES", "FUT", "CME"), hash(name), 0.25, "US/Central",
                            ALWAYS_OPEN, ALWAYS_OPEN, local_symbol=name, expiry=expiry)

    chain = [month("ESM7", date(2027, 6, 18)), month("ESH7", date(2027, 3, 19)),
             month("ESU7", date(2027, 9, 17))]
    assert front(chain, date(2027, 3, 11)).local_symbol == "ESH7"  # 8 days left
    assert front(chain, date(2027, 3, 12)).local_symbol == "ESM7"  # 7 days: rolled
    assert front(chain, date(2027, 9, 11)) is None  # all within the week: none
