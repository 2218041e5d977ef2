"""Months unattended (issue 10), the engine's part: contract details stay fresh, so a bot
left alone for weeks keeps trading; the gateway going away is told once, once more if it stays
away, and once when it is back."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from pathlib import Path

from engine.domain import ConnectionState
from engine.events import ConnectionEvent
from engine.hours import TradingHours
from tests.engine.conftest import make_settings, next_event, running_engine

QUIET = "fast=50,slow=60"


async def test_contract_details_are_asked_for_at_every_connect(gateway, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params=QUIET)
    async with running_engine(gateway, settings) as (engine, control):
        assert engine.contracts.asked == 1
        events = control.subscribe()
        gateway.drop_connections()
        await next_event(events, ConnectionEvent,
                         lambda e: e.state is ConnectionState.CONNECTED, 20)
        assert engine.contracts.asked == 2


async def test_trading_hours_about_to_run_out_are_asked_for_again(
    gateway, tmp_path: Path
) -> None:
    """IB sends about a week of hours: asked once, they ran out and every entry was refused
    as outside trading hours from the second week on."""
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params=QUIET)
    async with running_engine(gateway, settings) as (engine, _):
        book = engine.broker.contracts  # IBBroker's: the test stands in for the week passing
        now = engine.clock.now()
        fresh = book.info("AAPL")
        assert fresh is not None and fresh.trading_hours.known_until > now + timedelta(days=3)
        ending = TradingHours(fresh.trading_hours.intervals[:1], (), now + timedelta(hours=2))
        book.add("AAPL", book["AAPL"], dataclasses.replace(fresh, trading_hours=ending))
        answered = asyncio.Event()
        ask = engine.contracts.ask

        async def ask_and_tell() -> None:
            await ask()
            answered.set()

        engine.contracts.ask = ask_and_tell  # type: ignore[method-assign]
        await asyncio.wait_for(answered.wait(), 10)  # the watchdog asked again, unprompted
        assert book.info("AAPL").trading_hours.known_until > now + timedelta(days=3)


async def test_the_gateway_away_is_told_once_again_if_it_lasts_then_once_when_back(
    gateway, tmp_path: Path
) -> None:
    """IB Gateway restarts every night and needs a login every week: the phone hears that it
    went, once more if it stays away past GATEWAY_AWAY_ALERT_MINUTES, and that it is back,
    with the downtime; never an alert per retry."""
    settings = make_settings(tmp_path, symbols="AAPL", strategy_params=QUIET,
                             gateway_away_alert_minutes=1)
    async with running_engine(gateway, settings) as (_, control):
        events = control.subscribe(maxsize=10_000)
        gateway.refuse_connections(0.6)  # wall seconds: many retries; the alert is due at 0.1 s
        gateway.drop_connections()

        async def until_back() -> list[ConnectionEvent]:
            told = []
            while not told or told[-1].state is not ConnectionState.CONNECTED:
                event = await events.get()
                if isinstance(event, ConnectionEvent):
                    told.append(event)
            return told

        told = await asyncio.wait_for(until_back(), 20)
    assert [e.state for e in told] == [ConnectionState.DISCONNECTED] * 2 + [
        ConnectionState.CONNECTED
    ]
    assert "still retrying" in told[1].detail
    assert told[2].downtime_seconds is not None and told[2].downtime_seconds >= 0.5
