"""Bars for backtest tests: from a few hand-written rows, or a seeded random walk."""

from __future__ import annotations

import numpy as np
import pandas as pd

from backtest.data import BarData, bar_seconds
from backtest.runner import NO_LIMITS, BacktestConfig
from engine.strategies import parse_params


def bars(rows: list[tuple[float, float, float, float]], start: str = "2026-01-05 14:30",
         freq: str = "1min", symbol: str = "TEST") -> BarData:
    """BarData from (open, high, low, close) rows."""
    index = pd.date_range(start, periods=len(rows), freq=freq, tz="UTC")
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"], index=index)
    frame["volume"] = 100.0
    return BarData(symbol, frame, bar_seconds(index))


def random_walk(n: int, seed: int = 7, freq: str = "1D", start: str = "2020-01-01",
                step: float = 0.01) -> pd.DataFrame:
    """OHLCV with a DatetimeIndex (UTC): each bar opens near the last close."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, step, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(rng.normal(0, step / 4, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, step, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, step, n))
    index = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": 1000.0}, index=index)


def config(strategy: str = "sma_cross", params: str = "fast=3,slow=6", quantity: float = 10,
           **overrides: object) -> BacktestConfig:
    limits = {**NO_LIMITS, **{k: v for k, v in overrides.items() if k in NO_LIMITS}}
    rest = {k: v for k, v in overrides.items() if k not in NO_LIMITS}
    return BacktestConfig(strategy, parse_params(strategy, params), quantity, **limits, **rest)
