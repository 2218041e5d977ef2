"""Review of the options merge, end to end on ibsim: a close by hand on an option's last day is
no settlement at expiry, and a burst of /chain does not hold up the kill switch (each failed
before its fix)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from engine.domain import EngineState, Instrument
from engine.trader import Trader
from tests.bot.test_options_trading import trade_by_hand
from tests.engine.conftest import make_settings, running_engine, signal, sim_gateway

NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(autouse=True)
def silent_strategy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Trader, "on_bar", lambda self, state, bar, trade: None)


async def test_an_option_sold_by_hand_on_its_last_day_is_not_a_settlement(
    tmp_path: Path,
) -> None:
    thursday = datetime(2026, 12, 3, 11, 0, tzinfo=NEW_YORK)
    async with sim_gateway(start=thursday) as gateway:
        spot = gateway.price("AAPL")
        chain = gateway.universe.option_chain(gateway.spec("AAPL").con_id)
        strike = min((s.strike for s in chain if s.last_trade_date == "20261204"),
                     key=lambda k: abs(k - spot))
        option = Instrument.option("AAPL", "20261204", strike, "C")
        settings = make_settings(tmp_path, symbols=(option,), outside_rth=True)
        async with running_engine(gateway, settings) as (engine, _):
            assert await signal(engine, option.symbol, 2) is not None
            friday = datetime(2026, 12, 4, 11, 0, tzinfo=NEW_YORK)
            await gateway.advance(friday.timestamp() - gateway.clock.now())
            await trade_by_hand(gateway, option, "SELL", 2)  # closed by hand, 11:00

            async def seen_flat() -> None:  # hours pass before the close: the bot sees it
                while option.symbol not in engine.position_audit.flat_at:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(seen_flat(), 10)
            after_close = datetime(2026, 12, 4, 16, 5, tzinfo=NEW_YORK)
            await gateway.advance(after_close.timestamp() - gateway.clock.now())

            async def flat() -> None:
                while any(p.quantity for p in await engine.broker.fresh_positions()):
                    await engine.wait_positions_settled(1)

            await asyncio.wait_for(flat(), 10)
            engine.clock.sync(await engine.broker.current_time())
            await engine.reconcile()  # the nightly reconnect's reconciliation
            differences = await engine.position_audit.check()
            await engine.recorder.writer.flush()
            settled = [r.message for r in await engine.journal.recent_events(100)
                       if r.kind == "option_settled"]
            assert differences or engine.risk.state is EngineState.PAUSED, (
                "the close by hand was taken for a settlement: "
                f"{engine.risk.state}, {engine.risk.pause_reason!r}, {settled}")


async def test_a_burst_of_chains_does_not_delay_the_kill_switch(tmp_path: Path) -> None:
    import time

    from tests.engine.conftest import open_positions

    async with sim_gateway() as gateway:
        settings = make_settings(tmp_path, outside_rth=True)
        async with running_engine(gateway, settings) as (engine, control):
            await open_positions(engine)
            expiry = (await control.option_chain("AAPL")).expirations[-1]
            chains = [asyncio.ensure_future(control.option_chain("AAPL", expiry))
                      for _ in range(10)]  # ten /chain AAPL EXPIRY from the chat
            await asyncio.sleep(0.3)  # their contract-details requests are queued
            started = time.monotonic()
            placed = asyncio.ensure_future(gateway.hooks.order_received.wait(timeout=30))
            flatten = asyncio.ensure_future(control.flatten("test"))
            await placed
            delay = time.monotonic() - started
            await asyncio.wait_for(flatten, 30)
            await asyncio.gather(*chains, return_exceptions=True)
            assert delay < 1.0, f"the kill switch's first close reached IB after {delay:.1f} s"


async def test_one_expirys_chain_at_a_time_and_its_quotes_still_come(tmp_path: Path) -> None:
    from engine.reports import ChainBusy, ChainReport

    async with sim_gateway() as gateway:
        settings = make_settings(tmp_path, outside_rth=True)
        async with running_engine(gateway, settings) as (_engine, control):
            expiry = (await control.option_chain("AAPL")).expirations[-1]
            first, second = await asyncio.gather(
                control.option_chain("AAPL", expiry), control.option_chain("AAPL", expiry),
                return_exceptions=True)
            assert isinstance(first, ChainReport) and isinstance(second, ChainBusy)
            assert len(first.rows) == len(first.strikes) == 10
            assert all(row.call is not None and row.put is not None for row in first.rows)
            again = await control.option_chain("AAPL", expiry)  # free once the first is done
            assert len(again.rows) == 10
