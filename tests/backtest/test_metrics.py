"""The metrics on series small enough to compute by hand."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from backtest.metrics import periods_per_year, round_trips, summarize
from engine.domain import Fill, Side

DAYS = pd.date_range("2026-01-05", periods=3, freq="1D", tz="UTC")  # Mon, Tue, Wed


def test_returns_drawdown_and_ratios_by_hand() -> None:
    # 100 → 110 → 99 → 121: returns +10 %, −10 %, +22.2 %
    summary = summarize(DAYS, 86_400, np.array([110.0, 99.0, 121.0]), np.array([1, 1, 0]),
                        100.0, [21.0], 0.5, 252)
    returns = [0.1, -0.1, 22 / 99]
    assert summary.total_return == pytest.approx(0.21)
    assert summary.sharpe == pytest.approx(
        statistics.mean(returns) / statistics.stdev(returns) * math.sqrt(252))
    downside = math.sqrt(0.01 / 3)
    assert summary.sortino == pytest.approx(statistics.mean(returns) / downside * math.sqrt(252))
    assert summary.max_drawdown == pytest.approx(0.1)  # 110 → 99
    # From the peak (Monday's close) to the recovery (Wednesday's close).
    assert summary.max_drawdown_duration == timedelta(days=2)
    # Three days from the first bar's start to the last bar's close.
    assert summary.cagr == pytest.approx(1.21 ** (365.25 / 3) - 1)
    assert summary.exposure == pytest.approx(2 / 3)
    assert (summary.trades, summary.win_rate, summary.average_trade) == (1, 1.0, 21.0)
    assert summary.profit_factor == math.inf
    assert summary.commissions == 0.5
    assert summary.end == datetime(2026, 1, 8, tzinfo=UTC)


def test_a_drawdown_not_recovered_lasts_to_the_end() -> None:
    summary = summarize(DAYS, 86_400, np.array([90.0, 95.0, 80.0]), np.zeros(3), 100.0, [],
                        0.0, 252)
    assert summary.max_drawdown == pytest.approx(0.2)
    assert summary.max_drawdown_duration == timedelta(days=3)
    assert (summary.trades, summary.win_rate, summary.profit_factor) == (0, None, None)


def _fill(side: Side, quantity: float, pnl: float) -> Fill:
    return Fill("x", "r", 0, datetime(2026, 1, 5, tzinfo=UTC), "T", side, quantity, 10.0, 1.0,
                pnl)


def test_round_trips_are_flat_to_flat_net_of_commissions() -> None:
    fills = [
        _fill(Side.BUY, 10, -1.0), _fill(Side.SELL, 10, 19.0),  # +18
        _fill(Side.BUY, 5, -1.0), _fill(Side.BUY, 5, -1.0), _fill(Side.SELL, 10, -8.0),  # −10
        _fill(Side.SELL, 10, -1.0), _fill(Side.BUY, 20, 4.0),  # short +3, then long (reversal)
        _fill(Side.SELL, 10, 6.0),  # +6
    ]
    trades = round_trips(fills)
    assert trades == [18.0, -10.0, 3.0, 6.0]
    summary = summarize(DAYS, 86_400, np.array([100.0] * 3), np.zeros(3), 100.0, trades, 0, 252)
    assert summary.win_rate == 0.75
    assert summary.profit_factor == pytest.approx(27 / 10)
    assert summary.average_trade == pytest.approx(17 / 4)


def test_periods_per_year_from_the_bar_size() -> None:
    assert periods_per_year(pd.date_range("2026-01-05", periods=5, freq="1D", tz="UTC")) == 252
    session = pd.date_range("2026-01-05 14:30", periods=390, freq="1min", tz="UTC")
    two_days = session.append(session + pd.Timedelta(days=1))
    assert periods_per_year(two_days) == 252 * 390
    # Bars on a weekend: a market open every day (crypto).
    assert periods_per_year(pd.date_range("2026-01-03", periods=7, freq="1D", tz="UTC")) == 365
