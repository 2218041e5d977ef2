"""The report's pictures: what the price and equity charts are given, and the files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from backtest.data import BarData
from backtest.grid import as_text, metrics, params_text, run_combination
from backtest.pictures import equity_series, price_inputs, report_charts
from backtest.runner import run
from charts.equity import thin
from tests.backtest.helpers import config, random_walk


def _result(n: int, **overrides: object):  # type: ignore[no-untyped-def]
    data = BarData("SPY", random_walk(n, freq="1min", start="2026-01-05 14:30"), 60)
    return run(data, config(params="fast=3,slow=8", record_indicators=True, **overrides))


def test_every_fill_is_a_marker_with_the_indicators_of_each_bar() -> None:
    result = _result(300)
    price = price_inputs(result)
    assert len(price.bars) == 300 and len(result.fills) > 10
    assert len(price.markers) == len(result.fills)
    assert [(m.time, m.side, m.price) for m in price.markers] == [
        (f.time, f.side.value, f.price) for f in result.fills]
    assert list(price.indicators) == ["SMA3", "SMA8"]
    assert all(len(values) == 300 for values in price.indicators.values())
    assert price.indicators["SMA8"][:7] == [None] * 7 and price.indicators["SMA8"][7] is not None
    assert price.title == "SPY · sma_cross"


def test_a_long_run_shows_its_last_bars_and_their_fills() -> None:
    result = _result(1200)
    price = price_inputs(result, window=500)
    assert price.bars.index.equals(result.data.frame.index[700:])
    inside = [f for f, i in zip(result.fills, result.fill_bars, strict=True) if i >= 700]
    assert len(price.markers) == len(inside) < len(result.fills)
    assert price.title == "SPY · sma_cross · last 500 of 1,200 bars"
    assert len(price.indicators["SMA3"]) == 500


def test_equity_starts_with_the_cash_and_is_marked_at_each_close() -> None:
    result = _result(50)
    equity = equity_series(result)
    assert len(equity) == 51 and equity.iloc[0] == 100_000.0
    assert equity.index[0] == result.data.frame.index[0]
    assert equity.index[1] == result.data.frame.index[0] + pd.Timedelta(minutes=1)
    assert np.array_equal(equity.to_numpy()[1:], result.equity)


def test_thinning_keeps_the_extremes_and_the_largest_drawdown() -> None:
    values = 100 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.01, 100_000)))
    keep = thin(values, 4000)
    assert len(keep) <= 4000 and keep[0] == 0 and keep[-1] == len(values) - 1
    kept = values[keep]
    assert kept.min() == values.min() and kept.max() == values.max()

    def worst(v: np.ndarray) -> float:
        return float((v / np.maximum.accumulate(v) - 1).min())
    assert worst(kept) == worst(values)
    assert np.array_equal(thin(values[:10], 4000), np.arange(10))


def test_report_charts_writes_two_pngs(tmp_path: Path) -> None:
    paths = report_charts(_result(300), tmp_path)
    assert [p.name for p in paths] == ["equity.png", "price.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") for p in paths)


def test_a_combination_is_the_single_run_with_its_params() -> None:
    result = _result(400)
    assert params_text("slow=8,allow_short=false", {"fast": 2, "allow_short": True}) == (
        "slow=8,allow_short=true,fast=2")
    swept = run_combination(config(params="fast=9,slow=30"), {"fast": 3, "slow": 8},
                            result.data)
    assert swept == metrics(result.summary())
    assert as_text(config(params="fast=4,slow=9").params) == "fast=4,slow=9,allow_short=false"
