"""`tradebot backtest`: the command's inputs checked (one line and exit 2 when wrong), the run
with a progress bar, the summary printed, the files written."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from backtest.broker import Commission
from backtest.data import BarData, DataError, load_csv, load_journal
from backtest.pictures import report_charts
from backtest.report import summary_columns, summary_table, write_report, write_trades_csv
from backtest.runner import BacktestConfig, run
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
        data = _load(settings, args.data)
    except (BadInput, DataError) as exc:
        print(f"tradebot backtest: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
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
            write_report(result, args.report, args.split, report_charts)
    except OSError as exc:
        print(f"tradebot backtest: cannot write {exc.filename} ({exc.strerror})", file=sys.stderr)
        return EXIT_BAD_INPUT
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
