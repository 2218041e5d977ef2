"""The `tradebot` command line: run, sim-gateway, backtest (in `bot/backtest_cli.py`), download,
journal."""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import re
import sqlite3
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from engine import __version__
from engine.config import Settings, SettingsError, load_settings
from engine.errors import ConfigurationError
from engine.logs import redact_process_output

if TYPE_CHECKING:
    from engine.domain import Fill, Order
    from engine.journal import EventRow

EXIT_SETTINGS = 2


def _since(text: str) -> datetime:
    """`2h`, `3d`, `30m` ago, or an ISO date/time (UTC unless it says otherwise)."""
    match = re.fullmatch(r"(\d+)\s*([mhd])", text.strip())
    if match:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        return datetime.now(UTC) - timedelta(**{unit: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a time like 2h, 3d or 2026-11-20T14:00, got {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradebot",
        description="A Telegram-controlled trading bot for Interactive Brokers. Settings come "
        "from the environment and .env (see .env.example).",
    )
    parser.add_argument("--version", action="version", version=f"tradebot {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    commands.add_parser(
        "run",
        help="run the trading engine and its front-end (the default)",
        description="Run the engine: the built-in simulated gateway when IB_HOST is empty, the "
        "Telegram bot when TELEGRAM_BOT_TOKEN is set, otherwise the console. Ctrl-C stops it.",
    )

    # Listed for the overview only: main() hands everything after `sim-gateway` to ibsim's own
    # parser, because argparse's REMAINDER after a subcommand refuses options (`--port 4002`).
    commands.add_parser(
        "sim-gateway",
        help="run the simulated IB Gateway (ibsim) standalone (see sim-gateway --help)",
        add_help=False,
    )

    backtest = commands.add_parser(
        "backtest",
        help="replay historical bars through a strategy and the risk rules; print the summary",
        description="Run a strategy over historical bars with the live strategy and risk code "
        "(MAX_POSITION, MAX_NOTIONAL, MAX_DAILY_LOSS, MAX_ORDERS_PER_MINUTE, STOP_LOSS_PCT, "
        "TAKE_PROFIT_PCT from the settings). A market order decided at a bar's close fills at "
        "the next bar's open.",
    )
    backtest.add_argument(
        "data", metavar="DATA",
        help="a CSV file with the header datetime,open,high,low,close,volume (ISO 8601 times, "
        "ascending), or journal:SYMBOL for bars of BAR_SIZE stored by tradebot download",
    )  # fmt: skip
    backtest.add_argument("--strategy", help="the strategy's name (default: STRATEGY)")
    backtest.add_argument(
        "--params", help="key=value,... (default: STRATEGY_PARAMS for STRATEGY, else the "
        "strategy's defaults)",
    )  # fmt: skip
    backtest.add_argument("--quantity", type=float, help="shares a signal trades "
                          "(default: ORDER_QUANTITY)")  # fmt: skip
    backtest.add_argument("--cash", type=float, default=100_000.0,
                          help="starting cash (default 100000)")  # fmt: skip
    backtest.add_argument("--commission-per-share", type=float, default=0.0,
                          help="commission per share (default 0)")  # fmt: skip
    backtest.add_argument("--min-commission", type=float, default=0.0,
                          help="minimum commission per fill (default 0)")  # fmt: skip
    backtest.add_argument("--trades-out", metavar="FILE.csv", type=Path,
                          help="write every fill as CSV: time,side,quantity,price")  # fmt: skip
    backtest.add_argument(
        "--report", metavar="DIR", type=Path,
        help="write summary.json, summary.md, trades.csv, equity.png (the equity curve and its "
        "drawdown) and price.png (candles, the strategy's indicators, the fills; the last 500 "
        "bars of a longer run) into DIR",
    )  # fmt: skip
    backtest.add_argument(
        "--split", type=float, metavar="FRACTION",
        help="also summarise the first FRACTION of the bars and the rest side by side (0.7)",
    )  # fmt: skip
    backtest.add_argument(
        "--grid", action="append", metavar="NAME=SPEC",
        help="sweep a parameter: start:stop:step (fast=5:20:5) or a list (slow=20,40); repeat "
        "for more. Every combination runs (on all cores) with --params for the rest, and one "
        "table sorted by --sort is printed; each row is what that combination gives alone. "
        "Combinations the strategy refuses are listed as not run. Not with --trades-out, "
        "--report or --split (run the chosen combination alone for those)",
    )  # fmt: skip
    backtest.add_argument(
        "--sort", default="sharpe", metavar="METRIC",
        help="with --grid: the metric to sort by, best first (default sharpe; also sortino, "
        "total_return, cagr, max_drawdown, trades, win_rate, profit_factor, final_equity...; "
        "max_drawdown, max_drawdown_duration and commissions lowest first)",
    )  # fmt: skip
    backtest.add_argument(
        "--cluster", metavar="tcp://HOST:8786",
        help="with --grid: run the sweep on this Dask scheduler (pip install 'tradebot[cluster]')",
    )  # fmt: skip

    download = commands.add_parser(
        "download",
        help="fetch historical bars from the gateway into the journal (for backtests, charts)",
        description="Fetch SYMBOL's historical bars from the gateway the settings name (IB_HOST, "
        "IB_PORT, IB_CLIENT_ID; the built-in simulated gateway when IB_HOST is empty) into the "
        "journal's bars table (DB_PATH), within IB's pacing rules. Bars already stored are "
        "kept: downloading again adds only what is new. A backtest reads them as "
        "DATA journal:SYMBOL.",
    )
    download.add_argument("symbol", metavar="SYMBOL")
    download.add_argument(
        "--bar-size", help='IB bar size: "1 min", "5 mins", "1 hour", "1 day"... (BAR_SIZE)'
    )
    download.add_argument(
        "--duration", default="30 D",
        help='how far back: a number and S, D, W, M or Y (default "30 D")',
    )  # fmt: skip
    download.add_argument(
        "--client-id", type=int,
        help="the API client id to connect with (default IB_CLIENT_ID; another one while the "
        "bot runs)",
    )  # fmt: skip

    journal = commands.add_parser(
        "journal",
        help="print the most recent orders, fills and events from DB_PATH; export fills; "
        "back the journal up",
        description="Print the most recent orders, fills and events from the journal (DB_PATH). "
        "Works while the bot runs.",
    )
    journal.add_argument("--since", type=_since, help="only rows after this (2h, 3d, ISO time)")
    journal.add_argument("--limit", type=int, help="rows per table (default 20; with --csv: all)")
    journal.add_argument("--fills", action="store_true", help="only the fills")
    journal.add_argument(
        "--csv", action="store_true",
        help="with --fills: every fill as CSV on stdout, oldest first (time in UTC, symbol, "
        "side, quantity, price, commission, realized PnL, order_ref, exec_id)",
    )  # fmt: skip
    journal.add_argument(
        "--backup", metavar="FILE", type=Path,
        help="copy the journal to FILE, consistent while the bot writes; FILE must not exist",
    )  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sim-gateway"]:
        # ibsim takes no tradebot settings: a standalone gateway starts whatever .env holds.
        return _sim_gateway(argv[1:])
    args = build_parser().parse_args(argv)
    command = args.command or "run"
    # From here on nothing this process writes shows a bot token, not even a settings error
    # about a token pasted into the wrong variable.
    redact_process_output([os.environ.get("TELEGRAM_BOT_TOKEN", "").strip()])
    try:
        settings = load_settings()
    except SettingsError as exc:
        for line in exc.lines:
            print(f"tradebot: {line}", file=sys.stderr)
        return EXIT_SETTINGS
    if command == "run":
        from bot.runner import run

        return run(settings)
    if command == "backtest":
        from bot.backtest_cli import backtest

        return backtest(settings, args)
    if command == "download":
        return _download(settings, args)
    if args.backup is not None:
        return _backup(settings.db_path, args.backup)
    return asyncio.run(_journal_command(settings, args))


def _download(settings: Settings, args: argparse.Namespace) -> int:
    from bot.download import download, parse_request

    try:
        request = parse_request(args.symbol, args.bar_size or settings.bar_size, args.duration)
    except ValueError as exc:
        print(f"tradebot: download: {exc}", file=sys.stderr)
        return EXIT_SETTINGS

    def progress(line: str) -> None:
        print(f"  {line}", file=sys.stderr, flush=True)

    try:
        result = asyncio.run(download(settings, request, client_id=args.client_id,
                                      progress=progress))  # fmt: skip
    except ConfigurationError as exc:
        print(f"tradebot: download: {exc}", file=sys.stderr)
        return EXIT_SETTINGS
    span = f", {_t(result.first)} to {_t(result.last)} UTC" if result.first else ""
    print(f"{request.symbol} {request.bar_size}: {result.received} bars in {result.requests} "
          f"requests, {result.added} new in {settings.db_path}{span}")  # fmt: skip
    return 0


def _sim_gateway(argv: list[str]) -> int:
    from ibsim.cli import main as ibsim_main

    return ibsim_main(argv)


FILL_COLUMNS = (
    "time", "symbol", "side", "quantity", "price", "commission", "realized_pnl", "order_ref",
    "exec_id",
)  # fmt: skip


async def _journal_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.csv and not args.fills:
        print("tradebot: --csv exports the fills: tradebot journal --fills --csv", file=sys.stderr)
        return EXIT_SETTINGS
    if not settings.db_path.exists():
        print(f"tradebot: no journal at {settings.db_path} yet (DB_PATH)", file=sys.stderr)
        return 1
    from engine.journal import Journal

    try:
        journal = await Journal.open(settings.db_path)
    except ConfigurationError as exc:
        print(f"tradebot: {exc}", file=sys.stderr)
        return EXIT_SETTINGS
    try:
        if args.csv:
            fills = await journal.fills(args.since)
            _fills_csv(fills[-args.limit:] if args.limit else fills)
            return 0
        limit = args.limit or 20
        if args.fills:
            _fills_table(await journal.recent_fills(limit, args.since))
            return 0
        orders = await journal.recent_orders(limit, args.since)
        fills = await journal.recent_fills(limit, args.since)
        events = await journal.recent_events(limit, args.since)
    finally:
        await journal.close()
    _print_journal(orders, fills, events)
    return 0


def _backup(db_path: Path, target: Path) -> int:
    """A copy of the journal as it was at one moment, made while the bot may be writing."""
    from engine.journal_maintenance import backup_database

    if not db_path.exists():
        print(f"tradebot: no journal at {db_path} yet (DB_PATH)", file=sys.stderr)
        return 1
    try:
        backup_database(db_path, target)
    except FileExistsError:
        print(f"tradebot: --backup: {target} exists; name a new file (a backup never "
              "overwrites)", file=sys.stderr)  # fmt: skip
        return EXIT_SETTINGS
    except (sqlite3.Error, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"tradebot: --backup: cannot copy {db_path} to {target} ({reason})",
              file=sys.stderr)  # fmt: skip
        return EXIT_SETTINGS
    print(f"journal {db_path} copied to {target}")
    return 0


def _fills_csv(fills: Sequence[Fill]) -> None:
    """For a spreadsheet or the taxes: one row a fill, times in ISO 8601 UTC, numbers as
    stored, an unknown commission or PnL empty."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(FILL_COLUMNS)
    for f in fills:
        writer.writerow([
            f.time.astimezone(UTC).isoformat().replace("+00:00", "Z"), f.symbol, f.side.value,
            f.quantity, f.price, _csv_number(f.commission), _csv_number(f.realized_pnl),
            f.order_ref, f.exec_id,
        ])  # fmt: skip


def _csv_number(value: float | None) -> str:
    return "" if value is None else repr(value)


def _print_journal(orders: list[Order], fills: list[Fill], events: list[EventRow]) -> None:
    _table(
        "Orders",
        ["created (UTC)", "ref", "symbol", "side", "qty", "type", "limit", "status", "reason"],
        [
            [_t(o.created_at), o.order_ref, o.symbol, o.side.value, _n(o.quantity),
             o.order_type.value, _n(o.limit_price), o.status.value, o.reason]
            for o in orders
        ],
    )
    _fills_table(fills)
    _table(
        "Events",
        ["at (UTC)", "level", "kind", "message"],
        [[_t(e.at), e.level, e.kind, e.message] for e in events],
    )


def _fills_table(fills: list[Fill]) -> None:
    _table(
        "Fills",
        ["time (UTC)", "symbol", "side", "qty", "price", "commission", "realized", "ref"],
        [
            [_t(f.time), f.symbol, f.side.value, _n(f.quantity), _n(f.price),
             _n(f.commission), _n(f.realized_pnl), f.order_ref]
            for f in fills
        ],
    )


def _t(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _n(value: float | None) -> str:
    return "" if value is None else f"{value:,.4f}".rstrip("0").rstrip(".")


def _table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n{title} ({len(rows)})")
    if not rows:
        print("  (none)")
        return
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    for line in (header, *rows):
        print("  " + "  ".join(str(cell)[:80].ljust(width) for cell, width in zip(
            line, widths, strict=True)).rstrip())


if __name__ == "__main__":
    sys.exit(main())
