"""`tradebot backtest`: the command's inputs checked (one line and exit 2 when wrong), the run
with a progress bar, the summary printed, the files written."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import sys
from pathlib import Path

from backtest import grid
from backtest.broker import Commission
from backtest.data import BarData, DataError, load_csv, load_journal
from backtest.report import (
    summary_columns,
    summary_table,
    sweep_table,
    write_report,
    write_trades_csv,
)
from backtest.runner import BacktestConfig, run
from backtest.sweep import combinations, parse_grid, run_sweep
from bot.progress import ProgressBar
from engine.config import Settings
from engine.strategies import StrategyNotFound, parse_params

EXIT_BAD_INPUT = 2
JOURNAL_PREFIX = "journal:"


class BadInput(Exception):
    """One line for the user: what is wrong with the command's input."""


def backtest(settings: Settings, args: argparse.Namespace) -> int:
    try:
        config = _config(settings, args)
        combos = _grid(config, args) if args.grid else None
        data = _load(settings, args.data)
    except (BadInput, DataError) as exc:
        print(f"tradebot backtest: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if combos is not None:
        return _sweep(config, args, combos, data)
    config = dataclasses.replace(config, record_indicators=args.report is not None)
    progress = ProgressBar(len(data))
    try:
        result = run(data, config, progress)
    finally:
        progress.close()
    print(f"{config.strategy} on {data.symbol}: {len(data):,} bars, {len(result.fills):,} fills, "
          f"{len(result.refusals):,} orders refused by the risk rules"
          + (f", paused {len(result.pauses)} times by the daily loss limit"
             if result.pauses else ""))
    print(summary_table(summary_columns(result, args.split)))
    try:
        if args.trades_out is not None:
            write_trades_csv(result, args.trades_out)
        if args.report is not None:
            # Here, not at the top: matplotlib takes most of a second to import.
            from backtest.pictures import report_charts
            write_report(result, args.report, args.split, report_charts)
    except OSError as exc:
        print(f"tradebot backtest: cannot write {exc.filename} ({exc.strerror})", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def _grid(config: BacktestConfig, args: argparse.Namespace) -> list[grid.Combination]:
    """The combinations of `--grid`, each checked by the strategy; bad options are BadInput."""
    for option in ("trades_out", "report", "split"):
        if getattr(args, option) is not None:
            raise BadInput(f"--{option.replace('_', '-')} is for a single run, not with --grid: "
                           "run the chosen combination alone with --params")
    if args.sort not in grid.METRICS:
        raise BadInput(f"--sort: no metric {args.sort!r} (one of: {', '.join(grid.METRICS)})")
    try:
        combos = combinations(parse_grid(args.grid))
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    checked = grid.check(config, combos)
    unknown = [c.error for c in checked if c.error and c.error.startswith("unknown parameter")]
    if unknown:
        raise BadInput(f"--grid: {unknown[0]}")
    return checked


def _sweep(config: BacktestConfig, args: argparse.Namespace,
           combos: list[grid.Combination], data: BarData) -> int:
    valid = [c for c in combos if c.error is None]
    run_one = functools.partial(grid.run_combination, config)
    try:
        rows = run_sweep(run_one, [c.params for c in valid], sort_by=args.sort,
                         descending=args.sort not in grid.LOWER_IS_BETTER,
                         cluster=args.cluster, shared=data)
    except ValueError as exc:  # --cluster: dask missing, or no scheduler there
        print(f"tradebot backtest: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    where = f"on the Dask cluster at {args.cluster}" if args.cluster else "on this machine"
    print(f"{config.strategy} on {data.symbol}: {len(data):,} bars, {len(valid):,} of "
          f"{len(combos):,} combinations run {where}, sorted by {args.sort}")
    outcomes = [(row.params, row.metrics) for row in rows]
    outcomes += [(c.params, c.error) for c in combos if c.error is not None]
    print(sweep_table(list(combos[0].params), outcomes, args.sort))
    return 0


def _config(settings: Settings, args: argparse.Namespace) -> BacktestConfig:
    strategy = args.strategy or settings.strategy
    try:
        if args.params is None and strategy == settings.strategy:
            params = settings.strategy_params
        else:
            params = parse_params(strategy, args.params or "")
    except ValueError as exc:
        option = "--strategy" if isinstance(exc, StrategyNotFound) else "--params"
        raise BadInput(f"{option}: {exc}") from None
    quantity = settings.order_quantity if args.quantity is None else args.quantity
    _positive("--quantity", quantity)
    _positive("--cash", args.cash)
    _not_negative("--commission-per-share", args.commission_per_share)
    _not_negative("--min-commission", args.min_commission)
    if args.split is not None and not 0 < args.split < 1:
        raise BadInput(f"--split: expected a fraction between 0 and 1, like 0.7, got "
                       f"{args.split:g}")
    return BacktestConfig(
        strategy=strategy, params=params, quantity=quantity,
        max_position=settings.max_position, max_notional=settings.max_notional,
        max_daily_loss=settings.max_daily_loss,
        max_orders_per_minute=settings.max_orders_per_minute, cash=args.cash,
        commission=Commission(args.commission_per_share, args.min_commission),
        stop_loss_pct=settings.stop_loss_pct, take_profit_pct=settings.take_profit_pct,
    )


def _load(settings: Settings, source: str) -> BarData:
    if source.startswith(JOURNAL_PREFIX):
        symbol = source.removeprefix(JOURNAL_PREFIX).strip().upper()
        if not symbol:
            raise BadInput("DATA: journal:SYMBOL needs a symbol, like journal:AAPL")
        return load_journal(settings.db_path, symbol, settings.bar_size)
    return load_csv(Path(source))


def _positive(option: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise BadInput(f"{option}: expected a number greater than 0, got {value:g}")


def _not_negative(option: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise BadInput(f"{option}: expected a number of 0 or more, got {value:g}")
