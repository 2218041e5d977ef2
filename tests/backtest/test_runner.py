"""The loop: no look-ahead, the live risk rules, protective orders, the split."""

from __future__ import annotations

import warnings
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from backtest.data import BarData
from backtest.runner import _bar_starts, run
from engine.domain import Bar, Signal
from engine.strategies import STRATEGIES
from engine.strategies.base import Strategy, StrategyParams
from tests.backtest.helpers import bars, config, random_walk


class Flipper(Strategy):
    """Wants long on even bars and flat on odd ones; records what it saw and when."""

    name: ClassVar[str] = "flipper"
    params_type: ClassVar[type[StrategyParams]] = StrategyParams
    seen: ClassVar[list[tuple[Bar, float]]] = []

    @property
    def warmup_bars(self) -> int:
        return 0

    def on_bar(self, bar: Bar, position: float) -> Signal | None:
        Flipper.seen.append((bar, position))
        target = self.quantity if len(Flipper.seen) % 2 else 0.0
        if target == position:
            return None
        return Signal(bar.symbol, bar.time, target, "flip")

    def indicator_values(self) -> dict[str, float | None]:
        return {}


@pytest.fixture
def flipper(monkeypatch: pytest.MonkeyPatch) -> type[Flipper]:
    monkeypatch.setitem(STRATEGIES, "flipper", Flipper)
    Flipper.seen = []
    return Flipper


def _walk(n: int, freq: str = "1min") -> BarData:
    frame = random_walk(n, freq=freq, start="2026-01-05 14:30")
    return BarData("TEST", frame, 60 if freq == "1min" else 10)


def test_no_look_ahead(flipper: type[Flipper]) -> None:
    data = _walk(50)
    result = run(data, config("flipper", ""))
    frame = data.frame
    # The strategy saw every bar once, in order, each only as it closed: its values are the bar's.
    assert [bar.time for bar, _ in flipper.seen] == list(frame.index)
    assert [bar.close for bar, _ in flipper.seen] == frame["close"].tolist()
    # Every decision at bar i's close filled at bar i + 1's open, never earlier.
    assert len(result.fills) == 49
    for fill, index in zip(result.fills, result.fill_bars, strict=True):
        assert fill.time == frame.index[index]
        assert fill.price == frame["open"].iloc[index]
    assert result.fill_bars == list(range(1, 50))
    # The position the strategy was told at bar i is what filled up to bar i, no more.
    told = [position for _, position in flipper.seen]
    assert told == [0.0] + [10.0 if i % 2 else 0.0 for i in range(1, 50)]

    # The bars are made by bar_maker: each equals the Bar the dataclass builds.
    assert [bar for bar, _ in flipper.seen] == [
        Bar("TEST", time, row.open, row.high, row.low, row.close, row.volume)
        for time, row in zip(frame.index, frame.itertuples(), strict=True)
    ]

def test_a_strategy_cannot_trade_on_the_bar_it_decides_on() -> None:
    # A jump up at bar 9's close: sma_cross buys there, and pays bar 10's open, not bar 9's.
    rows = [(100.0, 100.5, 99.5, 100.0)] * 9 + [(100.0, 110.0, 100.0, 110.0)] + \
           [(120.0, 121.0, 119.0, 120.0)] * 3
    result = run(bars(rows), config(params="fast=2,slow=4"))
    [fill] = result.fills
    assert (result.fill_bars, fill.price) == ([10], 120.0)


def test_the_position_cap_applies(flipper: type[Flipper]) -> None:
    result = run(_walk(10), config("flipper", "", max_position=5))
    assert result.fills == []
    assert result.refusals[0].reason == "position cap: TEST would be 10, cap 5"


def test_the_notional_cap_applies(flipper: type[Flipper]) -> None:
    result = run(_walk(10), config("flipper", "", max_notional=500))
    assert result.fills == []
    assert result.refusals[0].reason.startswith("notional cap:")


def test_the_order_rate_cap_applies_at_the_bars_close_time(flipper: type[Flipper]) -> None:
    # 10-second bars, two orders a minute: of six decisions a minute, two go out.
    result = run(_walk(60, freq="10s"), config("flipper", "", max_orders_per_minute=2))
    reasons = {r.reason for r in result.refusals}
    assert reasons == {"order rate cap: 2 orders in the last minute"}
    assert 18 <= len(result.fills) <= 21


def test_the_daily_loss_limit_pauses_entries() -> None:
    # Long 10 from 101; a bar closing at 90 loses 110 against a limit of 50.
    up = [(90.0 + i, 91.0 + i, 89.0 + i, 90.5 + i) for i in range(8)]
    rows = ([(100.0, 100.5, 99.5, 100.0)] * 6 + [(100.0 + i, 101.0 + i, 99.0 + i, 100.5 + i)
            for i in range(8)] + [(107.0, 107.0, 89.0, 90.0)] + [(90.0, 90.5, 89.5, 90.0)] * 4
            + up)
    result = run(bars(rows), config(params="fast=2,slow=4", max_daily_loss=50))
    [(when, reason)] = result.pauses
    assert when == bars(rows).frame.index[14] + pd.Timedelta(minutes=1)  # that bar's close
    assert reason == "daily loss limit: today's PnL -110.00 reached -50.00"
    # Paused: the exit on the cross down still goes out; the next entry the same day does not.
    assert [(f.side.value, b) for f, b in zip(result.fills, result.fill_bars, strict=True)] == [
        ("BUY", 7), ("SELL", 15)]
    assert [r.reason for r in result.refusals] == [f"paused: {reason}"]


def test_the_daily_loss_pause_ends_with_the_trading_day() -> None:
    frame = random_walk(3 * 390, freq="1min", start="2026-01-05 14:30", step=0.004)
    data = BarData("TEST", frame, 60)
    result = run(data, config(params="fast=5,slow=20", max_daily_loss=5))
    assert result.pauses  # the limit is tiny: it pauses
    after = [b for b in result.fill_bars if frame.index[b] > result.pauses[0][0]]
    assert after  # and trading goes on after the pause


def test_stop_loss_from_the_settings_closes_the_entry() -> None:
    rows = ([(100.0, 100.5, 99.5, 100.0)] * 6 + [(100.0, 105.0, 100.0, 105.0)]
            + [(105.0, 106.0, 104.0, 105.5), (105.0, 105.0, 98.0, 99.0)]
            + [(99.0, 99.5, 98.5, 99.0)] * 2)
    result = run(bars(rows), config(params="fast=2,slow=4", stop_loss_pct=2))
    sides = [(f.side.value, f.price, b) for f, b in zip(result.fills, result.fill_bars,
                                                       strict=True)]
    # Entry at bar 7's open; the stop is 2 % under the decision's last price 105: 102.9.
    assert sides == [("BUY", 105.0, 7), ("SELL", 102.9, 8)]


def test_take_profit_fills_at_the_gap_open() -> None:
    rows = ([(100.0, 100.5, 99.5, 100.0)] * 6 + [(100.0, 105.0, 100.0, 105.0)]
            + [(105.0, 106.0, 104.0, 105.5), (112.0, 113.0, 111.0, 112.0)]
            + [(112.0, 112.5, 111.5, 112.0)] * 2)
    result = run(bars(rows), config(params="fast=2,slow=4", take_profit_pct=5))
    assert [(f.side.value, f.price) for f in result.fills] == [("BUY", 105.0), ("SELL", 112.0)]


def test_split_summarises_both_parts_of_one_run() -> None:
    data = BarData("TEST", random_walk(400), 86_400)
    result = run(data, config(params="fast=5,slow=20"))
    first, rest = result.split(0.7)
    assert (first.bars, rest.bars) == (280, 120)
    assert rest.initial_equity == first.final_equity
    whole = result.summary()
    assert rest.final_equity == whole.final_equity
    assert (1 + first.total_return) * (1 + rest.total_return) == pytest.approx(
        1 + whole.total_return)
    assert first.trades + rest.trades == whole.trades
    with pytest.raises(ValueError, match="without bars"):
        result.split(0.0001)


@pytest.mark.parametrize("tz", ["UTC", None, "America/New_York"])
@pytest.mark.parametrize("unit", ["ns", "us", "s"])
def test_bar_starts_are_the_index_as_datetimes(tz: str | None, unit: str) -> None:
    rng = np.random.default_rng(3)
    # Irregular gaps (sessions, holidays, a missing bar), sub-microsecond parts in "ns".
    stamps = np.sort(pd.Timestamp("2026-03-01").value + rng.integers(0, 10**15, 2_000))
    index = pd.DatetimeIndex(stamps).tz_localize("UTC").as_unit(unit)
    index = index.tz_convert(tz) if tz else index.tz_localize(None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # to_pydatetime's "discarding nanoseconds"
        expected = index.to_pydatetime().tolist()
    starts = _bar_starts(index)
    assert starts == expected
    assert [s.tzinfo for s in starts] == [e.tzinfo for e in expected]
