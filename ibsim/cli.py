"""Standalone simulator: ``tradebot sim-gateway`` calls ``main(argv)``."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import math
import signal
import sys
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .gateway import SimGateway
from .persistence import StateFileError
from .rhythm import GATEWAY_TZ, time_of_day, weekly_time

log = logging.getLogger("ibsim")

# Beyond an hour per second the market driver falls behind the clock and the simulated time
# soon leaves what a datetime can hold; numpy seeds are unsigned 32-bit.
MAX_SPEED = 3600.0
MAX_SEED = 2**32 - 1
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _speed(text: str) -> float:
    try:
        speed = float(text)
    except ValueError:
        speed = math.nan
    if not (speed == 0 or 0.1 <= speed <= MAX_SPEED):
        raise argparse.ArgumentTypeError(
            f"expected 0 (frozen) or a number from 0.1 to {MAX_SPEED:g}, got {text!r}"
        )
    return speed


def _seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if not 0 <= seed <= MAX_SEED:
        raise argparse.ArgumentTypeError(
            f"expected a whole number from 0 to {MAX_SEED}, got {text!r}"
        )
    return seed


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port 0-65535 (0 = any), got {text!r}")
    return port


def _cash(text: str) -> float:
    try:
        cash = float(text)
    except ValueError:
        cash = math.nan
    if not 0 <= cash <= 1e12:
        raise argparse.ArgumentTypeError(f"expected an amount from 0 to 1e12, got {text!r}")
    return cash


def _start(text: str) -> str:
    try:
        moment = dt.datetime.fromisoformat(text)
        moment.replace(tzinfo=moment.tzinfo or dt.UTC).timestamp()
    except (ValueError, OverflowError, OSError):
        raise argparse.ArgumentTypeError(
            f"expected an ISO time such as 2026-11-20T09:30-05:00, got {text!r}"
        ) from None
    if not 1990 <= moment.year <= 2100:
        raise argparse.ArgumentTypeError(f"expected a year from 1990 to 2100, got {text!r}")
    return text


def _time_of_day(text: str) -> str:
    try:
        time_of_day(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _weekly(text: str) -> str:
    try:
        weekly_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _duration(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 10000, got {text!r}")
    return value


def _time_zone(text: str) -> str:
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown time zone {text!r}") from None
    return text


def _folder(text: str) -> str:
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"no such folder: {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tradebot sim-gateway",
        description="Simulated IB Gateway speaking the TWS API (connect ib_async to it).",
    )
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=4002, help="API port (default 4002, 0 = any)")
    p.add_argument(
        "--seed", type=_seed, default=1, help=f"seed of the synthetic prices (0-{MAX_SEED})"
    )
    p.add_argument(
        "--speed",
        type=_speed,
        default=60.0,
        help=f"simulated seconds per wall second, 0.1-{MAX_SPEED:g} (default 60; 0 = frozen)",
    )
    p.add_argument(
        "--start",
        type=_start,
        default=None,
        help="simulated start time, ISO 8601 (default: last weekday 09:30 New York)",
    )
    p.add_argument("--state", default=None, help="state file that survives restarts (JSON)")
    p.add_argument(
        "--data",
        type=_folder,
        default=None,
        help="directory of SYMBOL.csv bars (datetime,open,high,low,close,volume)",
    )
    p.add_argument(
        "--symbols", nargs="+", default=None, help="contract universe, e.g. AAPL MSFT EURUSD BTC ES"
    )
    p.add_argument(
        "--account", nargs="+", default=["DU1234567"], help="paper account(s) (default DU1234567)"
    )
    p.add_argument("--cash", type=_cash, default=1_000_000.0, help="starting cash per account")
    p.add_argument(
        "--control-port",
        type=_port,
        default=None,
        help="loopback port for one-line JSON fault/clock commands (0 = any)",
    )
    rhythm = p.add_argument_group("IB's rhythm (simulated time)")
    rhythm.add_argument(
        "--daily-restart",
        type=_time_of_day,
        default=None,
        metavar="HH:MM",
        help="restart every day at this local time: clients dropped, the API port closed",
    )
    rhythm.add_argument(
        "--restart-minutes", type=_duration, default=3.0, help="how long a restart lasts (3)"
    )
    rhythm.add_argument(
        "--weekly-outage",
        type=_weekly,
        default=None,
        metavar="'DAY HH:MM'",
        help="the weekly login, e.g. 'Sun 01:00': the port stays closed for hours",
    )
    rhythm.add_argument(
        "--outage-hours", type=_duration, default=2.0, help="how long the weekly login lasts (2)"
    )
    rhythm.add_argument(
        "--gateway-tz",
        type=_time_zone,
        default=GATEWAY_TZ,
        help=f"the gateway's local time zone for the times above (default {GATEWAY_TZ})",
    )
    p.add_argument(
        "--bulletin",
        nargs=3,
        action="append",
        default=[],
        metavar=("AT", "EXCHANGE", "TEXT"),
        help="a news bulletin at AT (+SECONDS after the start, or ISO 8601) from EXCHANGE "
        "('' for a system one); repeatable",
    )
    p.add_argument(
        "--news-providers",
        nargs="*",
        default=None,
        metavar="CODE",
        help="the news providers the account subscribes to (default all: BRFG BRFUPDN DJNL; "
        "none given: no news subscription)",
    )
    p.add_argument(
        "--log-level", default="INFO", type=str.upper, choices=LOG_LEVELS, help="default INFO"
    )
    return p


async def _serve(args: argparse.Namespace) -> None:
    gw = SimGateway(
        host=args.host,
        port=args.port,
        seed=args.seed,
        speed=args.speed,
        start=args.start,
        symbols=args.symbols,
        data_dir=args.data,
        account=args.account,
        cash=args.cash,
        state_file=args.state,
        control_port=args.control_port,
        daily_restart=args.daily_restart,
        restart_minutes=args.restart_minutes,
        weekly_outage=args.weekly_outage,
        outage_hours=args.outage_hours,
        gateway_tz=args.gateway_tz,
        bulletins=[tuple(b) for b in args.bulletin],
        news_providers=args.news_providers,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with gw:
        # Printed (not just logged) so scripts can read the chosen ports.
        print(f"ibsim ready port={gw.port} control_port={gw.control_port}", flush=True)
        await stop.wait()
        log.info("stopping")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    try:
        asyncio.run(_serve(args))
    except StateFileError as exc:
        print(f"tradebot sim-gateway: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    except ValueError as exc:
        log.error("bad configuration: %s", exc)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
