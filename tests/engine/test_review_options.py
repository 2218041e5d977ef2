"""Review of the options merge: the defects it found, each shown by a test that failed before
its fix (two option classes under one name, the settlement explaining too much, an expired
option stopping the start, a written option under the premium's notional)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from ib_async import Contract, ContractDetails
from ib_async import Position as IBPosition

import engine.config as config
from engine.broker import IBBroker
from engine.domain import Instrument, Side
from engine.hours import ALWAYS_OPEN
from engine.option_expiry import settle_expired
from engine.position_audit import PositionDifference as Difference
from engine.risk import OrderRequest, RiskLimits, RiskManager
from tests.engine.conftest import make_settings, running_engine

ACCOUNT = "DU1234567"


# --- two options held by hand under one name ------------------------------------------------


def _spx(con_id: int, trading_class: str) -> Contract:
    """SPX's third-Friday expiry is listed twice: the AM-settled SPX and the PM-settled SPXW,
    same symbol, expiry, strike and right, different conIds."""
    return Contract(secType="OPT", conId=con_id, symbol="SPX", strike=6000.0, right="C",
                    lastTradeDateOrContractMonth="20261218", multiplier="100",
                    currency="USD", tradingClass=trading_class,
                    localSymbol=f"{trading_class:<6}261218C06000000")


def _broker_holding(*held: tuple[Contract, float]) -> IBBroker:
    broker = IBBroker("127.0.0.1", 1, 1)
    broker.account = ACCOUNT
    positions = [IBPosition(ACCOUNT, c, q, 1000.0) for c, q in held]
    broker.ib.positions = lambda account="": list(positions)  # type: ignore[method-assign]
    broker.ib.portfolio = lambda account="": []  # type: ignore[method-assign]
    by_con_id = {c.conId: c for c, _ in held}

    async def details(contract: Contract) -> list[ContractDetails]:
        found = by_con_id[contract.conId]
        return [ContractDetails(contract=Contract(**{**found.dict(), "exchange": "CBOE"}))]

    broker.ib.reqContractDetailsAsync = details  # type: ignore[method-assign]
    broker.lookup._ib = broker.ib  # the same IB object; kept explicit
    return broker


def test_two_option_classes_held_by_hand_get_two_names() -> None:
    broker = _broker_holding((_spx(101, "SPX"), 1.0), (_spx(102, "SPXW"), 2.0))
    names = [p.symbol for p in broker.positions()]
    assert len(set(names)) == 2, names


async def test_flatten_all_closes_each_option_held_by_hand_in_its_own_contract() -> None:
    broker = _broker_holding((_spx(101, "SPX"), 1.0), (_spx(102, "SPXW"), 2.0))
    routed = []
    for position in broker.positions():  # as KillSwitch.flatten does for scope "account"
        assert await broker.ensure_contract(position.symbol)
        routed.append((position.quantity, broker.contracts[position.symbol].conId))
    assert sorted(routed) == [(1.0, 101), (2.0, 102)], routed


# --- the expiry settlement explains too much ------------------------------------------------

PUT = Instrument.option("AAPL", "20261218", 190.0, "P")
STOCK = Instrument("AAPL")
AFTER_CLOSE = datetime(2026, 12, 18, 21, 30, tzinfo=UTC)  # 16:30 New York


def test_an_out_of_the_money_put_does_not_explain_a_sale_of_the_underlying() -> None:
    stock = Difference("AAPL", 0.0, 100.0)  # 100 shares sold by hand; the put was OTM
    settled, rest = settle_expired([Difference(PUT.symbol, 0.0, 1.0), stock],
                                   {i.symbol: i for i in (PUT, STOCK)}, AFTER_CLOSE,
                                   lambda symbol: 100.0, {"AAPL": 210.0}.get,
                                   {PUT.symbol: AFTER_CLOSE})
    # The underlying closed at 210 (put 190 worthless): the stock's difference is unexplained.
    assert rest == [stock], (settled, rest)


# --- an option in SYMBOLS on its expiry evening stops the whole bot from starting ----------


def test_an_option_expiring_today_in_new_york_still_starts_in_the_evening() -> None:
    """Settings do not judge an option's expiry by any clock (UTC's date turned at 19:00 New
    York on the expiry day, while the option may still be held): the engine drops one past
    its expiry's close at start, with an alert (the test below)."""
    instruments = config.parse_symbols("AAPL,AAPL:OPT:20261218:200:C")
    assert [i.symbol for i in instruments] == ["AAPL", "AAPL 20261218 200C"]


# --- a written option under the notional cap ------------------------------------------------


NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


def _risk() -> RiskManager:
    """MAX_NOTIONAL 50,000 and room for everything else."""
    return RiskManager(RiskLimits(max_position=100, max_notional=50_000, max_daily_loss=1_000,
                                  max_orders_per_minute=10, bar_seconds=60))


def test_writing_options_is_capped_by_the_underlying_not_the_premium() -> None:
    risk = _risk()
    request = OrderRequest("AAPL 20261218 200C", Side.SELL, 50, 0.50, 0.0, multiplier=100.0,
                           strike=200.0)
    decision = risk.check(request, NOW, NOW, ALWAYS_OPEN)
    assert not decision.allowed
    assert decision.reason.startswith("notional cap: 1,000,000.00 over 50,000.00")


def test_buying_options_and_covering_a_short_keep_the_premium_notional() -> None:
    risk = _risk()
    bought = OrderRequest("AAPL 20261218 200C", Side.BUY, 50, 0.50, 0.0, multiplier=100.0,
                          strike=200.0)
    assert risk.check(bought, NOW, NOW, ALWAYS_OPEN).allowed  # 2,500 of premium
    # selling 50 of 60 held writes nothing; selling 70 of 60 held writes 10: 200,000
    trimmed = OrderRequest("AAPL 20261218 200C", Side.SELL, 50, 0.50, 60.0, multiplier=100.0,
                           strike=200.0)
    assert trimmed.written == 0 and risk.check(trimmed, NOW, NOW, ALWAYS_OPEN).allowed
    flipped = OrderRequest("AAPL 20261218 200C", Side.SELL, 70, 0.50, 60.0, multiplier=100.0,
                           strike=200.0)
    assert flipped.written == 10
    assert risk.check(flipped, NOW, NOW, ALWAYS_OPEN).reason.startswith(
        "notional cap: 200,000.00 over 50,000.00")


async def test_an_expired_option_in_symbols_is_dropped_at_start_and_the_rest_trades(
    gateway, tmp_path,
) -> None:
    """A restart after an option in SYMBOLS expired does not stop the bot: it says so once,
    trades the rest, and the kill switch stays in reach."""
    expired = Instrument.option("AAPL", "20201218", 200.0, "C")
    settings = make_settings(tmp_path, symbols=(Instrument("AAPL"), expired))
    async with running_engine(gateway, settings) as (engine, _):
        assert list(engine.market.symbols) == ["AAPL"]
        await engine.recorder.writer.flush()
        said = [r.message for r in await engine.journal.recent_events(50) if r.kind == "config"]
        assert said == ["AAPL 20201218 200C: expired on 2020-12-18; not traded "
                        "(remove it from SYMBOLS)"]


async def test_two_asking_the_brokers_time_at_once_both_get_it(gateway, tmp_path) -> None:
    """ib_async keeps one pending reqCurrentTime: two at once (the set-up's clock sync and an
    option going flat, say) left the first waiting out its timeout."""
    async with running_engine(gateway, make_settings(tmp_path)) as (engine, _):
        engine.broker._request_timeout = 2.0
        first, second = await asyncio.gather(engine.broker.current_time(),
                                             engine.broker.current_time())
        assert abs((second - first).total_seconds()) < 600
