"""Backtest speed: SMA 10/30 crossover over generated bars, tradebot against backtrader.

Run: .venv/bin/python bench/backtest_bench.py [--bars 200000] [--seed 1] [--repeat 1]

Both run the same seeded 1-minute bars on one core in this process: tradebot with the live
`sma_cross` strategy, `RiskManager` checks and the simulated broker (from the checked bars to
the result with its equity curve); backtrader 1.9.78 (a dev dependency) with `bt.ind.CrossOver`
of two SMAs, stdstats off, from its pandas feed to the end of `cerebro.run()`. Prints bars/s
for each, the ratio, and whether the fills agree. With --repeat N each runs N times and the
fastest counts.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backtest.data import BarData
from backtest.runner import NO_LIMITS, BacktestConfig, run
from engine.strategies import parse_params

FAST, SLOW, QUANTITY = 10, 30, 10


def generate(bars: int, seed: int) -> pd.DataFrame:
    """A seeded random walk of 1-minute OHLCV bars."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, bars)))
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(rng.normal(0, 0.0002, bars))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.001, bars))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.001, bars))
    index = pd.date_range("2024-01-02 14:30", periods=bars, freq="1min", tz="UTC")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": 1000.0}, index=index)


def best_of(repeat: int, work):  # type: ignore[no-untyped-def]
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    frame = generate(args.bars, args.seed)
    config = BacktestConfig("sma_cross", parse_params("sma_cross", f"fast={FAST},slow={SLOW}"),
                            QUANTITY, **NO_LIMITS)
    ours_seconds, result = best_of(
        args.repeat, lambda: run(BarData("BENCH", frame, 60), config))
    ours = [(f.time, f.side.value, f.quantity, f.price) for f in result.fills]
    ours_rate = args.bars / ours_seconds
    print(f"tradebot:   {args.bars:,} bars in {ours_seconds:6.2f} s = {ours_rate:10,.0f} bars/s "
          f"({len(ours):,} fills)")
    try:
        from tests.backtest.peer import run_backtrader
    except ImportError:
        print("backtrader: not installed (pip install -e '.[dev]')")
        return 0
    theirs_seconds, theirs = best_of(
        args.repeat, lambda: run_backtrader(frame, FAST, SLOW, QUANTITY))
    theirs_rate = args.bars / theirs_seconds
    print(f"backtrader: {args.bars:,} bars in {theirs_seconds:6.2f} s = {theirs_rate:10,.0f} "
          f"bars/s ({len(theirs):,} fills)")
    same = [(t, s, q) for t, s, q, _ in ours] == [(t, s, q) for t, s, q, _ in theirs] and all(
        abs(a[3] - b[3]) <= 1e-9 * abs(b[3]) for a, b in zip(ours, theirs, strict=True))
    print(f"ratio:      tradebot is {ours_rate / theirs_rate:.1f} × backtrader; "
          f"fills {'identical' if same else 'DIFFERENT'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
