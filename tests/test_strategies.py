"""The strategies on hand-made and random prices, the registry and STRATEGY_PARAMS parsing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from engine.domain import Bar, Signal
from engine.strategies import (
    STRATEGIES,
    BollingerBreakout,
    BollingerBreakoutParams,
    RsiReversion,
    RsiReversionParams,
    SmaCross,
    SmaCrossParams,
    Strategy,
    create,
    parse_params,
)

START = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
QTY = 100.0


def bar(i: int, close: float, symbol: str = "AAPL") -> Bar:
    return Bar(symbol, START + timedelta(minutes=i), close, close, close, close, 1000.0)


def run(
    strategy: Strategy, closes: Sequence[float], follow: bool = True, position: float = 0.0
) -> dict[int, Signal]:
    """Feed closes; return the signals by bar index. With `follow`, every target is filled."""
    signals = {}
    for i, close in enumerate(closes):
        signal = strategy.on_bar(bar(i, close), position)
        if signal is not None:
            signals[i] = signal
            if follow:
                position = signal.target
    return signals


def sma_cross(fast: int = 2, slow: int = 4, allow_short: bool = False) -> SmaCross:
    return SmaCross("AAPL", SmaCrossParams(fast, slow, allow_short), QTY)


# Bars 0-4 flat (SMA2 = SMA4 = 10). Bar 5: SMA2 11 > SMA4 10.5, the cross up.
# Bar 7: SMA2 10.5 < SMA4 10.75, the cross down. Bar 10: SMA2 10 > SMA4 9.75, up again.
CROSSES = [10, 10, 10, 10, 10, 12, 12, 9, 9, 9, 11, 11]


# --- sma_cross ------------------------------------------------------------------------------


def test_sma_cross_enters_and_exits_exactly_on_the_crossing_bars() -> None:
    signals = run(sma_cross(), CROSSES)
    assert sorted(signals) == [5, 7, 10]
    entry, exit_, again = signals[5], signals[7], signals[10]
    assert (entry.target, exit_.target, again.target) == (QTY, 0.0, QTY)
    assert entry.symbol == "AAPL"
    assert entry.time == bar(5, 12).time
    assert entry.reason == "SMA2 crossed above SMA4 (11.00 > 10.50)"
    assert entry.details == {"SMA2": 11.0, "SMA4": 10.5, "close": 12.0}
    assert exit_.reason == "SMA2 crossed below SMA4 (10.50 < 10.75)"


def test_sma_cross_does_not_repeat_a_signal_the_position_did_not_follow() -> None:
    # A refused entry (the position stays 0) is not asked for again on the following bars.
    signals = run(sma_cross(), CROSSES[:7], follow=False)
    assert list(signals) == [5]


def test_sma_cross_says_nothing_when_the_position_already_is_the_target() -> None:
    assert run(sma_cross(), CROSSES[:7], follow=False, position=QTY) == {}
    # Long-only: a cross below while flat is no signal either.
    assert run(sma_cross(), [12, 12, 12, 12, 12, 9], follow=False) == {}


def test_sma_cross_with_allow_short_reverses() -> None:
    signals = run(sma_cross(allow_short=True), CROSSES)
    assert {i: s.target for i, s in signals.items()} == {5: QTY, 7: -QTY, 10: QTY}
    # From flat, a cross below goes short.
    signals = run(sma_cross(allow_short=True), [12, 12, 12, 12, 12, 9])
    assert {i: s.target for i, s in signals.items()} == {5: -QTY}


def test_sma_cross_equals_a_pandas_computation_of_the_crossings() -> None:
    closes = 100 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.01, 3_000)))
    fast, slow = pd.Series(closes).rolling(10).mean(), pd.Series(closes).rolling(30).mean()
    up = (fast > slow) & (fast.shift() <= slow.shift())
    down = (fast < slow) & (fast.shift() >= slow.shift())
    position, expected = 0.0, {}
    for i in range(len(closes)):
        target = QTY if up[i] else -QTY if down[i] else position
        if target != position:
            expected[i] = position = target

    signals = run(SmaCross("AAPL", SmaCrossParams(10, 30, allow_short=True), QTY), closes)
    assert len(expected) > 20
    assert {i: s.target for i, s in signals.items()} == expected


def test_sma_cross_warmup_and_indicator_values() -> None:
    strategy = sma_cross(fast=2, slow=4)
    assert strategy.warmup_bars == 4
    assert strategy.indicator_values() == {"SMA2": None, "SMA4": None}
    # No decision is possible before warmup_bars bars were seen.
    assert run(strategy, [10, 10, 10, 12]) == {}
    assert strategy.indicator_values() == {"SMA2": 11.0, "SMA4": 10.5}


# --- rsi_reversion --------------------------------------------------------------------------


def rsi_reversion(allow_short: bool = False) -> RsiReversion:
    return RsiReversion("AAPL", RsiReversionParams(period=3, allow_short=allow_short), QTY)


# RSI3 on these closes: None x3, then 0 (bar 3), 0, 50.0, 71.4 (bar 6), 82.6, 89.0, 93.0,
# 60.5, 39.8 (bar 11), 26.2 (bar 12), 17.4, 11.5.
DIP_AND_RALLY = [100, 99, 98, 97, 96, 98, 100, 102, 104, 106, 104, 102, 100, 98, 96]


def test_rsi_reversion_buys_oversold_and_exits_above_50() -> None:
    signals = run(rsi_reversion(), DIP_AND_RALLY)
    assert {i: s.target for i, s in signals.items()} == {3: QTY, 6: 0.0, 12: QTY}
    assert signals[3].reason == "RSI3 at 0.0, below oversold 30"
    assert signals[6].reason == "RSI3 at 71.4, back above 50"
    assert signals[6].details["RSI3"] == pytest.approx(71.428571428)


def test_rsi_reversion_long_only_does_not_short_overbought() -> None:
    rising = [100 + i for i in range(10)]
    assert run(rsi_reversion(), rising) == {}


def test_rsi_reversion_with_allow_short_reverses() -> None:
    signals = run(rsi_reversion(allow_short=True), DIP_AND_RALLY)
    # Bar 6 (71.4 > 70) reverses the long into a short; 39.8 covers, 26.2 buys again.
    assert {i: s.target for i, s in signals.items()} == {3: QTY, 6: -QTY, 11: 0.0, 12: QTY}
    assert signals[6].reason == "RSI3 at 71.4, above overbought 70"
    assert signals[11].reason == "RSI3 at 39.8, back below 50"


def test_rsi_reversion_asks_again_while_still_oversold() -> None:
    # Its decision depends only on RSI and position: a refused entry is asked for next bar.
    signals = run(rsi_reversion(), [100, 99, 98, 97, 96], follow=False)
    assert list(signals) == [3, 4]


def test_rsi_reversion_warmup() -> None:
    strategy = rsi_reversion()
    assert strategy.warmup_bars == 3
    assert strategy.indicator_values() == {"RSI3": None}


# --- bollinger_breakout ---------------------------------------------------------------------


def bollinger(allow_short: bool = False) -> BollingerBreakout:
    params = BollingerBreakoutParams(period=10, k=2.0, allow_short=allow_short)
    return BollingerBreakout("AAPL", params, QTY)


CALM = [100, 100.5, 100, 99.5, 100, 100.5, 100, 99.5, 100, 100.2]


def test_bollinger_breakout_enters_above_upper_and_exits_below_middle() -> None:
    # Bands (lower, middle, upper) at bar 10: 97.81, 100.42, 103.03; at bar 14: middle 101.82.
    signals = run(bollinger(), [*CALM, 104, 105, 104.5, 103, 101.5])
    assert {i: s.target for i, s in signals.items()} == {10: QTY, 14: 0.0}
    assert signals[10].reason == "close 104.00 above upper band 103.03 (BB10,2)"
    window = pd.Series([*CALM[1:], 104])
    assert signals[10].details == pytest.approx(
        {
            "BB10,2 upper": window.mean() + 2 * window.std(),
            "BB10,2 middle": window.mean(),
            "BB10,2 lower": window.mean() - 2 * window.std(),
            "close": 104.0,
        }
    )
    assert signals[14].reason == "close 101.50 back below middle band 101.82 (BB10,2)"


def test_bollinger_breakout_long_only_ignores_a_break_below() -> None:
    assert run(bollinger(), [*CALM, 96, 95, 99, 100.5]) == {}


def test_bollinger_breakout_with_allow_short_goes_short_below_lower() -> None:
    # Bar 10: 96 < lower 96.99; bar 12: 99 > middle 98.97 covers.
    signals = run(bollinger(allow_short=True), [*CALM, 96, 95, 99, 100.5])
    assert {i: s.target for i, s in signals.items()} == {10: -QTY, 12: 0.0}
    assert signals[10].reason == "close 96.00 below lower band 96.99 (BB10,2)"
    assert signals[12].reason == "close 99.00 back above middle band 98.97 (BB10,2)"


def test_bollinger_breakout_warmup_and_indicator_values() -> None:
    strategy = bollinger()
    # The tenth close completes the bands and can itself decide.
    assert strategy.warmup_bars == 9
    names = ["BB10,2 upper", "BB10,2 middle", "BB10,2 lower"]
    assert list(strategy.indicator_values()) == names
    assert set(strategy.indicator_values().values()) == {None}
    run(strategy, [100] * 10)
    assert strategy.indicator_values() == dict.fromkeys(names, 100.0)


# --- registry and STRATEGY_PARAMS -----------------------------------------------------------


def test_registry_finds_every_strategy_by_name() -> None:
    expected = {
        "sma_cross": SmaCross,
        "rsi_reversion": RsiReversion,
        "bollinger_breakout": BollingerBreakout,
    }
    assert expected == STRATEGIES


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_empty_text_gives_the_defaults(name: str) -> None:
    assert parse_params(name, "") == STRATEGIES[name].params_type()
    assert parse_params(name, "  ") == STRATEGIES[name].params_type()


def test_defaults() -> None:
    assert parse_params("sma_cross", "") == SmaCrossParams(fast=10, slow=30, allow_short=False)
    assert parse_params("rsi_reversion", "") == RsiReversionParams(14, 30.0, 70.0, False)
    assert parse_params("bollinger_breakout", "") == BollingerBreakoutParams(20, 2.0, False)


def test_values_are_converted_to_the_field_types() -> None:
    params = parse_params("sma_cross", " fast = 5 ,slow=20, allow_short=YES,")
    assert params == SmaCrossParams(fast=5, slow=20, allow_short=True)
    assert isinstance(params, SmaCrossParams)
    assert type(params.fast) is int
    rsi = parse_params("rsi_reversion", "period=7,oversold=25,overbought=80.5")
    assert rsi == RsiReversionParams(period=7, oversold=25.0, overbought=80.5)
    assert type(rsi.oversold) is float
    assert parse_params("bollinger_breakout", "k=1.5").k == 1.5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        *[("true", True), ("1", True), ("yes", True), ("True", True)],
        *[("false", False), ("0", False), ("no", False), ("NO", False)],
    ],
)
def test_booleans(text: str, expected: bool) -> None:
    assert parse_params("sma_cross", f"allow_short={text}").allow_short is expected


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "foo",
            "",
            "unknown strategy 'foo' (choose sma_cross, rsi_reversion, bollinger_breakout, "
            "or path/to/file.py:ClassName)",
        ),
        ("sma_cross", "fast=ten", "fast: expected an integer, got 'ten'"),
        ("sma_cross", "fast=2.5", "fast: expected an integer, got '2.5'"),
        ("sma_cross", "fats=3", "unknown parameter 'fats' for sma_cross (fast, slow, allow_short)"),
        ("sma_cross", "fast=40", "slow must be greater than fast"),
        ("sma_cross", "fast=0", "fast must be at least 1"),
        ("sma_cross", "allow_short=maybe", "allow_short: expected true or false, got 'maybe'"),
        ("sma_cross", "fast", "expected key=value, got 'fast'"),
        ("sma_cross", "fast=3,fast=4", "fast: given twice"),
        ("rsi_reversion", "oversold=low", "oversold: expected a number, got 'low'"),
        ("rsi_reversion", "oversold=60", "oversold must be between 0 and 50"),
        ("rsi_reversion", "overbought=101", "overbought must be between 50 and 100"),
        ("rsi_reversion", "period=1", "period must be at least 2"),
        ("bollinger_breakout", "k=nan", "k: expected a finite number, got 'nan'"),
        ("bollinger_breakout", "k=0", "k must be greater than 0"),
        ("bollinger_breakout", "period=1", "period must be at least 2"),
    ],
)
def test_parse_errors_name_the_problem(name: str, text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_params(name, text)
    assert str(caught.value) == message


def test_create_builds_a_ready_to_use_strategy() -> None:
    strategy = create("sma_cross", "MSFT", parse_params("sma_cross", "fast=2,slow=4"), 10.0)
    assert isinstance(strategy, SmaCross)
    assert (strategy.symbol, strategy.quantity, strategy.warmup_bars) == ("MSFT", 10.0, 4)


def test_create_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown strategy 'nope'"):
        create("nope", "MSFT", SmaCrossParams(), 1.0)
    with pytest.raises(TypeError, match="SmaCrossParams"):
        create("sma_cross", "MSFT", RsiReversionParams(), 1.0)
    with pytest.raises(ValueError, match="quantity"):
        create("sma_cross", "MSFT", SmaCrossParams(), 0.0)
    with pytest.raises(ValueError, match="slow must be greater than fast"):
        create("sma_cross", "MSFT", SmaCrossParams(fast=30, slow=10), 1.0)
