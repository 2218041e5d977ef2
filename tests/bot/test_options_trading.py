"""The engine trading an option from SYMBOLS, end to end: ibsim's option chain and fills, the
real ib_async client, the engine's risk (the notional cap counts the multiplier), the journal
(fills with IB's realized PnL, a contract being 100 shares), /positions through Telegram; and
afterwards the fault suite's invariants (no orderRef twice at the broker, the journal's fills
are the broker's executions, positions explained)."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from ib_async import IB, MarketOrder

from engine.domain import EngineState, Instrument, Side
from engine.events import OptionSettledEvent
from engine.ib_contracts import make_contract
from engine.trader import Trader
from ibsim import SimGateway
from tests.bot.engine_rig import reply_to
from tests.bot.harness import OPERATOR, running_front_end
from tests.engine.conftest import (
    make_settings,
    next_event,
    running_engine,
    signal,
    sim_gateway,
)
from tests.engine.test_fault_suite import AtBroker, assert_invariants, settle
from tests.fakebotapi import FakeBotAPI

NEW_YORK = ZoneInfo("America/New_York")


async def trade_by_hand(gateway: SimGateway, instrument: Instrument, action: str,
                        quantity: float) -> None:
    """A market order from another program (client 77), as a trader placing one by hand in
    TWS would; returns once it is filled."""
    hand = IB()
    await hand.connectAsync("127.0.0.1", gateway.port, clientId=77, timeout=10)
    try:
        (contract,) = await hand.qualifyContractsAsync(make_contract(instrument))
        filled = asyncio.ensure_future(gateway.hooks.fill.wait(
            lambda record: record.execution.client_id == 77, timeout=10))
        hand.placeOrder(contract, MarketOrder(action, quantity))
        await filled
    finally:
        hand.disconnect()


@pytest.fixture(autouse=True)
def silent_strategy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The strategy says nothing: the test sends the signals."""
    monkeypatch.setattr(Trader, "on_bar", lambda self, state, bar, trade: None)


def in_the_money_call(gateway: SimGateway) -> tuple[Instrument, str]:
    """A call of AAPL's furthest expiry about 15 below the money (worth 15 or more a share),
    and its OCC local symbol."""
    spot = gateway.price("AAPL")
    chain = gateway.universe.option_chain(gateway.spec("AAPL").con_id)
    expiry = max(s.last_trade_date for s in chain)
    calls = [s for s in chain if s.last_trade_date == expiry and s.right == "C"
             and s.strike <= spot - 15]
    spec = max(calls, key=lambda s: s.strike)
    return Instrument.option("AAPL", expiry, spec.strike, "C"), spec.local_symbol


async def test_an_option_from_symbols_is_traded_with_its_multiplier(tmp_path: Path) -> None:
    async with sim_gateway() as gateway:
        option, local_symbol = in_the_money_call(gateway)
        name = option.symbol  # "AAPL 2027MMDD 190C"
        settings = make_settings(
            tmp_path, symbols=(option,), order_quantity=1, max_position=100,
            max_notional=20_000, outside_rth=True,
        )
        async with (
            running_engine(gateway, settings) as (engine, control),
            FakeBotAPI() as api,
            running_front_end(api, control, engine.journal, {OPERATOR}),
        ):
            info = engine.broker.contract(name)
            assert info is not None
            assert (info.multiplier, info.local_symbol) == (100.0, local_symbol)

            # 50 contracts of a call worth 15+ a share is 75,000+ of notional: over 20,000
            # (it would pass at 1 a contract: 50 × ~20 = ~1,000).
            assert await signal(engine, name, 50) is None
            refusal = engine.trader.recent_refusals[-1]
            assert refusal.symbol == name and refusal.reason.startswith("notional cap: ")

            buy_ref = await signal(engine, name, 2)
            assert buy_ref is not None, engine.trader.recent_refusals
            held = engine.portfolio.positions[name]
            assert (held.quantity, held.sec_type, held.multiplier) == (2, "OPT", 100.0)
            (buy,) = await engine.journal.fills_for(buy_ref)
            assert buy.symbol == name and buy.side is Side.BUY and buy.quantity == 2
            # IB's avgCost is per contract: the price × 100, with the commission spread in
            assert held.avg_cost == pytest.approx(buy.price * 100 + (buy.commission or 0) / 2)
            engine.portfolio.last_price[name] = buy.price + 1.0
            assert engine.portfolio.unrealized_of(held) == pytest.approx(
                (100.0 - (buy.commission or 0) / 2) * 2)  # one dollar a share: 100 a contract

            reply = await reply_to(api, "/positions", "Positions: 1")
            row = next(line for line in reply.text.splitlines() if name in line)
            # the average a share (IB's per-contract cost over 100), not per contract
            assert re.search(rf"{re.escape(name)} +2 +{held.avg_cost / 100:,.2f} ", row), row

            await gateway.advance(600)
            sell_ref = await signal(engine, name, 0)
            assert sell_ref is not None
            await engine.writer.flush()
            (sell,) = await engine.journal.fills_for(sell_ref)
            assert sell.side is Side.SELL and sell.quantity == 2
            assert sell.commission is not None and buy.commission is not None
            assert sell.realized_pnl == pytest.approx(
                (sell.price - buy.price) * 2 * 100 - buy.commission - sell.commission, abs=0.01)
            assert name not in engine.portfolio.positions
            trades = await reply_to(api, "/trades", "Last 2 trades")
            assert trades.text.count(name) == 2, trades.text  # the whole name, not clipped

            await settle(engine)
            await assert_invariants(engine, AtBroker.of(gateway))
            assert [e.shares for e in gateway.executions] == [2, 2]


async def test_an_option_ib_does_not_list_is_an_unknown_symbol(tmp_path: Path) -> None:
    """A strike IB does not list: the engine's one line for a contract the gateway does not
    know, naming the option; the rest trades."""
    async with sim_gateway() as gateway:
        option, _ = in_the_money_call(gateway)
        missing = Instrument.option("AAPL", option.expiry, option.strike + 0.3, "C")
        settings = make_settings(tmp_path, symbols=(Instrument("AAPL"), missing))
        async with running_engine(gateway, settings) as (engine, _):
            assert list(engine.market.symbols) == ["AAPL"]
            await engine.writer.flush()
            rows = await engine.journal.recent_events(limit=50, levels=("error",))
            assert [r.message for r in rows if r.kind == "config"] == [
                f"{missing.symbol}: the gateway does not know this contract (error 200); "
                "not traded"
            ]


async def test_flatten_closes_the_bots_option_and_flatten_all_one_bought_by_hand(
    tmp_path: Path,
) -> None:
    async with sim_gateway() as gateway:
        option, _ = in_the_money_call(gateway)
        put = Instrument.option("AAPL", option.expiry, option.strike, "P")
        settings = make_settings(tmp_path, symbols=(option,), outside_rth=True)
        async with running_engine(gateway, settings) as (engine, control):
            assert await signal(engine, option.symbol, 3) is not None
            await trade_by_hand(gateway, put, "BUY", 2)
            hand_put = put.symbol  # not one of the bot's, yet named the bot's way

            async def shown() -> None:
                while {p.symbol for p in await engine.broker.fresh_positions()} != {
                        option.symbol, hand_put}:
                    await engine.wait_positions_settled(1)

            await asyncio.wait_for(shown(), 10)
            report = await asyncio.wait_for(control.flatten("test"), 30)
            assert report.flat, report
            assert [(c.symbol, c.quantity) for c in report.closed] == [(option.symbol, 3)]
            everything = await asyncio.wait_for(control.flatten("test", scope="account"), 30)
            assert everything.flat, everything
            assert [(c.symbol, c.quantity) for c in everything.closed] == [(hand_put, 2)]
            assert all(not p.quantity for p in gateway.account().positions.values())
            await settle(engine)
            await assert_invariants(engine, AtBroker.of(gateway))


async def test_on_its_last_day_an_option_takes_exits_only(tmp_path: Path) -> None:
    """IB settles an option held past its expiry without an execution: on its last day the
    bot sends no entry for it, while exits still go."""
    thursday = datetime(2026, 12, 3, 11, 0, tzinfo=NEW_YORK)  # hours before the close
    async with sim_gateway(start=thursday) as gateway:
        spot = gateway.price("AAPL")
        chain = gateway.universe.option_chain(gateway.spec("AAPL").con_id)
        assert min(s.last_trade_date for s in chain) == "20261204"
        strike = min((s.strike for s in chain), key=lambda k: abs(k - spot))
        option = Instrument.option("AAPL", "20261204", strike, "C")
        settings = make_settings(tmp_path, symbols=(option,), outside_rth=True)
        async with running_engine(gateway, settings) as (engine, _):
            assert await signal(engine, option.symbol, 2) is not None  # Thursday: an entry
            friday = datetime(2026, 12, 4, 9, 35, tzinfo=NEW_YORK)
            await gateway.advance(friday.timestamp() - gateway.clock.now())
            arrived = asyncio.Event()  # the engine's clock follows the bars: one of Friday's
            engine.market.on_closed = lambda state, bar, trade: (
                bar.time >= friday and trade and arrived.set())
            await asyncio.wait_for(arrived.wait(), 20)
            assert await signal(engine, option.symbol, 3) is None
            refusal = engine.trader.recent_refusals[-1]
            assert refusal.reason == (
                f"{option.symbol} expires 2026-12-04: exits only on its last day")
            assert await signal(engine, option.symbol, 0) is not None  # the exit goes
            await settle(engine)
            await assert_invariants(engine, AtBroker.of(gateway))


async def test_an_option_held_at_expiry_is_settled_not_a_difference(tmp_path: Path) -> None:
    """IB settles an option held at its expiry without an execution: the call gone and 100
    shares a contract of the underlying in its place. The position audit explains both (the
    bot trades the underlying too), tells it once, and trading goes on. (An underlying change
    no settlement adds up to still pauses: tests/engine/test_option_expiry.py.)"""
    thursday = datetime(2026, 12, 3, 11, 0, tzinfo=NEW_YORK)  # hours before the close
    async with sim_gateway(start=thursday) as gateway:
        spot = gateway.price("AAPL")
        chain = gateway.universe.option_chain(gateway.spec("AAPL").con_id)
        spec = max((s for s in chain if s.last_trade_date == "20261204" and s.right == "C"
                    and s.strike <= spot - 15), key=lambda s: s.strike)
        option = Instrument.option("AAPL", "20261204", spec.strike, "C")
        settings = make_settings(tmp_path, symbols=(Instrument("AAPL"), option),
                                 outside_rth=True)
        async with running_engine(gateway, settings) as (engine, control):
            assert await signal(engine, option.symbol, 2) is not None
            events = control.subscribe()
            after_close = datetime(2026, 12, 4, 16, 5, tzinfo=NEW_YORK)
            await gateway.advance(after_close.timestamp() - gateway.clock.now())
            assert gateway.positions() == {"AAPL": 200.0}, "exercised at the close"

            async def shown() -> None:
                while {p.symbol: p.quantity for p in await engine.broker.fresh_positions()
                       if p.quantity} != {"AAPL": 200.0}:
                    await engine.wait_positions_settled(1)

            await asyncio.wait_for(shown(), 10)
            engine.clock.sync(await engine.broker.current_time())
            await engine.reconcile()
            settled = (await next_event(events, OptionSettledEvent, timeout=15)).settlement
            assert (settled.option, settled.quantity, settled.underlying, settled.delivered) == (
                option.symbol, 2.0, "AAPL", 200.0)
            assert await engine.position_audit.check() == []
            assert engine.risk.state is EngineState.RUNNING
            await engine.recorder.writer.flush()
            rows = [r for r in await engine.journal.recent_events(100)
                    if r.kind == "option_settled"]
            assert len(rows) == 1, rows
