"""Every check a bar passes before it can drive a trade (engine/bars.py `bad_bar_reason`), each
on both sides of its boundary, and the interval arithmetic bars are built with."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from engine.bars import BarBuilder, bad_bar_reason, bar_start
from engine.domain import Bar

T0 = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)


def bar(o: float = 10, h: float = 12, lo: float = 9, c: float = 11, v: float = 100,
        at: datetime = T0) -> Bar:
    return Bar("AAPL", at, o, h, lo, c, v)


def test_a_sound_bar_passes() -> None:
    assert bad_bar_reason(bar(), None) is None


@pytest.mark.parametrize(
    "prices",
    [
        dict(o=12, h=12, lo=9, c=9),  # open at the high, close at the low
        dict(o=9, h=12, lo=9, c=12),
        dict(o=5, h=5, lo=5, c=5),  # a flat bar
    ],
)
def test_open_and_close_on_the_range_edges_pass(prices: dict[str, float]) -> None:
    assert bad_bar_reason(bar(**prices), None) is None


@pytest.mark.parametrize(
    "prices",
    [
        dict(c=12.01),  # close above the high
        dict(c=8.99),  # close below the low
        dict(o=12.01),  # open above the high
        dict(o=8.99),  # open below the low
    ],
)
def test_open_or_close_outside_the_range_is_refused(prices: dict[str, float]) -> None:
    assert bad_bar_reason(bar(**prices), None) == "open or close outside the high-low range"


def test_high_below_low_is_refused() -> None:
    assert bad_bar_reason(bar(o=10, h=9, lo=10, c=10), None) == "high below low"


@pytest.mark.parametrize("field", ["o", "h", "lo", "c", "v"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_refused(field: str, value: float) -> None:
    assert bad_bar_reason(bar(**{field: value}), None) == "non-finite value"


@pytest.mark.parametrize("field", ["o", "h", "lo", "c"])
@pytest.mark.parametrize("value", [0.0, -1.0])
def test_prices_must_be_above_zero(field: str, value: float) -> None:
    assert bad_bar_reason(bar(**{field: value}), None) == "price not above zero"


def test_a_tiny_positive_price_passes() -> None:
    assert bad_bar_reason(bar(o=0.0001, h=0.0001, lo=0.0001, c=0.0001), None) is None


def test_volume_zero_passes_and_negative_is_refused() -> None:
    assert bad_bar_reason(bar(v=0), None) is None
    assert bad_bar_reason(bar(v=-0.5), None) == "negative volume"


def test_order_against_the_previous_bar() -> None:
    previous = bar()
    assert bad_bar_reason(bar(at=T0), previous) == "duplicate bar"
    assert bad_bar_reason(bar(at=T0 - timedelta(seconds=5)), previous) == "bar out of order"
    assert bad_bar_reason(bar(at=T0 + timedelta(seconds=5)), previous) is None


def test_price_checks_come_before_order_checks() -> None:
    # A broken duplicate is reported for what is wrong with it, not as a duplicate.
    assert bad_bar_reason(bar(c=13), bar()) == "open or close outside the high-low range"


def test_bar_start_aligns_to_the_interval() -> None:
    assert bar_start(T0, 60) == T0
    assert bar_start(T0 + timedelta(seconds=59), 60) == T0
    assert bar_start(T0 + timedelta(seconds=60), 60) == T0 + timedelta(seconds=60)
    assert bar_start(T0 + timedelta(seconds=7), 5) == T0 + timedelta(seconds=5)
    assert bar_start(T0, 60).tzinfo is UTC


def test_bar_size_must_be_a_multiple_of_five_seconds() -> None:
    with pytest.raises(ValueError):
        BarBuilder("AAPL", 7)
    BarBuilder("AAPL", 10)


def small(seconds: int, price: float, high: float | None = None, low: float | None = None,
          volume: float = 1) -> Bar:
    return Bar("AAPL", T0 + timedelta(seconds=seconds), price,
               high if high is not None else price, low if low is not None else price, price,
               volume)


def test_a_built_bar_has_the_first_open_extremes_last_close_and_summed_volume() -> None:
    builder = BarBuilder("AAPL", 15)
    assert builder.add(small(0, 10, high=11, low=9.5, volume=3)) == []
    assert builder.add(small(5, 12, high=14, low=10, volume=4)) == []
    closed = builder.add(small(10, 8, high=9, low=7, volume=5))
    assert closed == [Bar("AAPL", T0, 10, 14, 7, 8, 12)]


def test_clock_closes_a_bar_only_once_its_interval_is_over() -> None:
    builder = BarBuilder("AAPL", 15)
    builder.add(small(0, 10))
    assert builder.flush(T0 + timedelta(seconds=14)) is None
    closed = builder.flush(T0 + timedelta(seconds=15))
    assert closed is not None and closed.time == T0
    assert builder.flush(T0 + timedelta(seconds=30)) is None  # nothing left to close
