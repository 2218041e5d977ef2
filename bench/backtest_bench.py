"""Backtest speed: SMA 10/30 crossover over generated bars, tradebot against backtrader.

Run: .venv/bin/python bench/backtest_bench.py [--bars 200000] [--seed 1] [--repeat 1]
     [--peer-bars N] [--no-peer] [--no-sweep] [--workers 2]

Both run the same seeded 1-minute bars on one core in this process: tradebot with the live
`sma_cross` strategy, `RiskManager` checks and the simulated broker (from the checked bars to
the result with its equity curve); backtrader 1.9.78 (a dev dependency) with `bt.ind.CrossOver`
of two SMAs, from its pandas feed to the end of `cerebro.run()`, twice: as users run it
(`bt.Cerebro()`, its default observers on) and with `stdstats=False` (the observers off, its
fastest). Prints bars/s for each, both ratios, and whether the fills agree. With --repeat N each
runs N times and the fastest counts; --peer-bars runs backtrader on the first N bars only (its
bars/s hardly depends on the length; tradebot's fills are then compared on those bars).

The sweep (run before backtrader, whose heap would burden the forked workers): 16
combinations (fast 5..20 × slow 30..60) through `tradebot backtest --grid`'s code on --workers
processes (default 2), against 8 of them run one after another here; the issue's goal is the
sweep within 1.1 × the time of the 8 single runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import functools

from backtest.data import BarData
from backtest.grid import run_combination
from backtest.runner import NO_LIMITS, BacktestConfig, run
from backtest.sweep import combinations, parse_grid, run_sweep
from engine.strategies import parse_params

FAST, SLOW, QUANTITY = 10, 30, 10
SWEEP_GRID = ("fast=5:20:5", "slow=30:60:10")  # 16 combinations


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


def fills_of(result) -> list[tuple]:  # type: ignore[no-untyped-def]
    return [(f.time, f.side.value, f.quantity, f.price) for f in result.fills]


def same_fills(ours: list[tuple], theirs: list[tuple]) -> bool:
    return [(t, s, q) for t, s, q, _ in ours] == [(t, s, q) for t, s, q, _ in theirs] and all(
        abs(a[3] - b[3]) <= 1e-9 * abs(b[3]) for a, b in zip(ours, theirs, strict=True))


def peer(frame: pd.DataFrame, repeat: int, ours_rate: float, ours: list[tuple]) -> None:
    try:
        from tests.backtest.peer import run_backtrader
    except ImportError:
        print("backtrader: not installed (pip install -e '.[dev]')")
        return
    bars = len(frame)
    ours = [fill for fill in ours if fill[0] <= frame.index[-1]]
    for label, stdstats in (("backtrader as users run it, bt.Cerebro() (observers on)", True),
                            ("backtrader, bt.Cerebro(stdstats=False) (observers off)", False)):
        seconds, theirs = best_of(
            repeat, lambda s=stdstats: run_backtrader(frame, FAST, SLOW, QUANTITY, stdstats=s))
        rate = bars / seconds
        print(f"{label}:\n            {bars:,} bars in {seconds:6.2f} s = {rate:10,.0f} bars/s "
              f"({len(theirs):,} fills)")
        print(f"            tradebot is {ours_rate / rate:.1f} × this; fills "
              f"{'identical' if same_fills(ours, theirs) else 'DIFFERENT'}")


def sweep(data: BarData, config: BacktestConfig, workers: int) -> None:
    combos = combinations(parse_grid(SWEEP_GRID))
    run_one = functools.partial(run_combination, config)
    started = time.perf_counter()
    rows = run_sweep(run_one, combos, workers=workers, shared=data)
    swept = time.perf_counter() - started
    singles = combos[:8]
    started = time.perf_counter()
    alone = [run_one(params, data) for params in singles]
    sequence = time.perf_counter() - started
    by_params = {tuple(row.params.items()): row.metrics for row in rows}
    same = all(by_params[tuple(p.items())] == m for p, m in zip(singles, alone, strict=True))
    print(f"sweep:      {len(combos)} combinations on {workers} processes in {swept:6.2f} s; "
          f"8 single runs in sequence {sequence:6.2f} s")
    print(f"            ratio {swept / sequence:.2f} (goal ≤ 1.10); the 8 rows "
          f"{'identical' if same else 'DIFFERENT'} to the single runs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--peer-bars", type=int,
                        help="run backtrader on the first N bars only (default: all)")
    parser.add_argument("--no-peer", action="store_true", help="skip backtrader")
    parser.add_argument("--no-sweep", action="store_true", help="skip the sweep")
    parser.add_argument("--workers", type=int, default=2, help="the sweep's processes")
    args = parser.parse_args()
    frame = generate(args.bars, args.seed)
    config = BacktestConfig("sma_cross", parse_params("sma_cross", f"fast={FAST},slow={SLOW}"),
                            QUANTITY, **NO_LIMITS)
    data = BarData("BENCH", frame, 60)
    ours_seconds, result = best_of(args.repeat, lambda: run(data, config))
    ours = fills_of(result)
    ours_rate = args.bars / ours_seconds
    print(f"tradebot:   {args.bars:,} bars in {ours_seconds:6.2f} s = {ours_rate:10,.0f} bars/s "
          f"({len(ours):,} fills)")
    # The sweep before backtrader: worker processes forked from a process holding backtrader's
    # run of 200,000 bars ran each combination 2.5 × slower (copy-on-write of that heap).
    if not args.no_sweep:
        sweep(data, config, args.workers)
    if not args.no_peer:
        peer(frame.iloc[:args.peer_bars], args.repeat, ours_rate, ours)
    return 0


if __name__ == "__main__":
    sys.exit(main())
