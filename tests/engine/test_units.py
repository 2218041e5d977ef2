"""The engine's pure parts: bar building and checks, risk decisions, hours, clock, event bus."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from engine.bars import BarBuilder, bad_bar_reason, bar_start
from engine.clock import BrokerClock
from engine.domain import Bar, EngineState, Side
from engine.events import EventBus
from engine.hours import TradingHours, trading_day
from engine.risk import OrderRequest, RiskLimits, RiskManager

T0 = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)


def small(seconds: int, close: float, symbol: str = "AAPL") -> Bar:
    return Bar(symbol, T0 + timedelta(seconds=seconds), close, close + 0.1, close - 0.1, close, 100)


def test_bar_closes_on_its_last_five_second_bar() -> None:
    builder = BarBuilder("AAPL", 60)
    closed = []
    for index in range(12):
        closed += builder.add(small(index * 5, 100 + index))
        if index < 11:
            assert closed == []
    assert len(closed) == 1
    bar = closed[0]
    assert (bar.time, bar.open, bar.close, bar.volume) == (T0, 100, 111, 1200)
    assert bar.high == pytest.approx(111.1) and bar.low == pytest.approx(99.9)


def test_bar_closes_on_a_later_bar_or_the_clock() -> None:
    builder = BarBuilder("AAPL", 60)
    builder.add(small(0, 100))
    builder.add(small(5, 101))
    # The rest of the minute is missing: the next minute's first bar closes it.
    closed = builder.add(small(65, 102))
    assert [bar.close for bar in closed] == [101]
    assert builder.flush(T0 + timedelta(seconds=119)) is None
    flushed = builder.flush(T0 + timedelta(seconds=120))
    assert flushed is not None and flushed.close == 102
    assert builder.add(small(30, 99)) == []  # late data for a closed bar is ignored


def test_seeded_partial_bar_continues() -> None:
    builder = BarBuilder("AAPL", 60)
    builder.seed(Bar("AAPL", T0, 99, 103, 98, 100, 500))
    closed = []
    for seconds in range(30, 60, 5):
        closed += builder.add(small(seconds, 101))
    assert len(closed) == 1
    assert (closed[0].open, closed[0].high, closed[0].low) == (99, 103, 98)


def test_bar_start_is_aligned() -> None:
    assert bar_start(T0 + timedelta(seconds=89), 60) == T0 + timedelta(seconds=60)


@pytest.mark.parametrize(
    ("bar", "reason"),
    [
        (Bar("A", T0, math.nan, 1, 1, 1), "non-finite"),
        (Bar("A", T0, 0, 1, 0, 1), "above zero"),
        (Bar("A", T0, 1, 1, 2, 1), "high below low"),
        (Bar("A", T0, 3, 2, 1, 1), "outside"),
        (Bar("A", T0, 1, 1, 1, 1, -5), "negative volume"),
    ],
)
def test_bad_bars(bar: Bar, reason: str) -> None:
    found = bad_bar_reason(bar, None)
    assert found is not None and reason in found


def test_duplicate_and_out_of_order() -> None:
    good = Bar("A", T0, 1, 1, 1, 1)
    assert bad_bar_reason(good, good) == "duplicate bar"
    assert bad_bar_reason(good, Bar("A", T0 + timedelta(seconds=5), 1, 1, 1, 1)) == (
        "bar out of order"
    )


def limits(**changes: float) -> RiskLimits:
    values = dict(max_position=100, max_notional=50_000, max_daily_loss=1000,
                  max_orders_per_minute=3, bar_seconds=60)
    values.update(changes)
    return RiskLimits(**values)  # type: ignore[arg-type]


def request(side: Side = Side.BUY, quantity: float = 10, position: float = 0,
            price: float = 100) -> OrderRequest:
    return OrderRequest("AAPL", side, quantity, price, position)


def test_risk_allows_a_normal_entry() -> None:
    risk = RiskManager(limits())
    assert risk.check(request(), T0, T0 - timedelta(seconds=60), TradingHours(())).allowed


def test_risk_refusals_have_reasons() -> None:
    risk = RiskManager(limits())
    fresh = T0 - timedelta(seconds=60)
    always = TradingHours(())
    assert "position cap" in risk.check(request(quantity=101), T0, fresh, always).reason
    assert "notional cap" in risk.check(request(price=6000), T0, fresh, always).reason
    assert "stale" in risk.check(request(), T0, T0 - timedelta(minutes=10), always).reason
    closed = TradingHours(((T0 + timedelta(hours=1), T0 + timedelta(hours=2)),))
    assert "trading hours" in risk.check(request(), T0, fresh, closed).reason
    for _ in range(3):
        risk.record_order(T0)
    assert "rate cap" in risk.check(request(), T0, fresh, always).reason
    assert risk.check(request(), T0 + timedelta(minutes=1), T0, always).allowed


def test_paused_blocks_entries_not_exits() -> None:
    risk = RiskManager(limits())
    risk.pause("by test")
    fresh = T0 - timedelta(seconds=60)
    always = TradingHours(())
    assert "paused" in risk.check(request(), T0, fresh, always).reason
    exit_long = request(Side.SELL, 10, position=10)
    assert exit_long.is_exit
    assert risk.check(exit_long, T0, T0 - timedelta(hours=5), always).allowed
    flip = request(Side.SELL, 20, position=10)
    assert not flip.is_exit
    assert not risk.check(flip, T0, fresh, always).allowed
    risk.halt("stop")
    assert risk.state is EngineState.HALTED
    assert not risk.check(exit_long, T0, fresh, always).allowed


def test_trading_hours_parse() -> None:
    hours = TradingHours.parse("20261120:0930-20261120:1600;20261121:CLOSED", "America/New_York")
    assert hours.is_open(datetime(2026, 11, 20, 14, 30, tzinfo=UTC))
    assert not hours.is_open(datetime(2026, 11, 20, 21, 1, tzinfo=UTC))
    assert trading_day(datetime(2026, 11, 21, 3, 0, tzinfo=UTC), "America/New_York") == (
        "2026-11-20"
    )


def test_broker_clock_runs_at_speed_and_never_steps_back() -> None:
    now = [100.0]
    clock = BrokerClock(speed=60, monotonic=lambda: now[0])
    clock.sync(T0)
    now[0] += 1
    assert clock.now() == T0 + timedelta(seconds=60)
    clock.sync(T0 + timedelta(seconds=30))  # older than the running clock: ignored
    assert clock.now() == T0 + timedelta(seconds=60)
    with pytest.raises(ValueError):
        clock.sync(datetime(2026, 1, 1))


async def test_slow_subscriber_drops_oldest_and_counts() -> None:
    bus = EventBus()
    slow = bus.subscribe(maxsize=2)
    for number in range(5):
        bus.publish(number)
    assert slow.dropped == 3
    assert [slow.get_nowait(), slow.get_nowait()] == [3, 4]


def test_first_bar_of_a_stream_begun_mid_interval_is_dropped() -> None:
    builder = BarBuilder("AAPL", 60)
    closed = []
    for seconds in range(30, 125, 5):  # listening began half way through the first minute
        closed += builder.add(small(seconds, 100 + seconds))
    assert [bar.time for bar in closed] == [T0 + timedelta(seconds=60)]
    assert closed[0].open == 160
    assert builder.partial_dropped == 1
    builder.reset()  # a new stream (after a reconnect) starts over
    closed = []
    for seconds in range(185, 245, 5):
        closed += builder.add(small(seconds, 1))
    assert closed == [] and builder.partial_dropped == 2
