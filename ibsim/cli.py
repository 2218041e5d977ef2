"""Standalone simulator: ``tradebot sim-gateway`` calls ``main(argv)``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from .gateway import SimGateway

log = logging.getLogger("ibsim")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sim-gateway",
        description="Simulated IB Gateway speaking the TWS API (connect ib_async to it).",
    )
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=4002, help="API port (default 4002, 0 = any)")
    p.add_argument("--seed", type=int, default=1, help="seed of the synthetic prices")
    p.add_argument(
        "--speed",
        type=float,
        default=60.0,
        help="simulated seconds per wall second (default 60; 0 = frozen)",
    )
    p.add_argument(
        "--start",
        default=None,
        help="simulated start time, ISO 8601 (default: last weekday 09:30 New York)",
    )
    p.add_argument("--state", default=None, help="state file that survives restarts (JSON)")
    p.add_argument(
        "--data",
        default=None,
        help="directory of SYMBOL.csv bars (datetime,open,high,low,close,volume)",
    )
    p.add_argument(
        "--symbols", nargs="+", default=None, help="contract universe, e.g. AAPL MSFT EURUSD BTC ES"
    )
    p.add_argument(
        "--account", nargs="+", default=["DU1234567"], help="paper account(s) (default DU1234567)"
    )
    p.add_argument("--cash", type=float, default=1_000_000.0, help="starting cash per account")
    p.add_argument(
        "--control-port",
        type=int,
        default=None,
        help="loopback port for one-line JSON fault/clock commands (0 = any)",
    )
    p.add_argument("--log-level", default="INFO")
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
        level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    try:
        asyncio.run(_serve(args))
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    except ValueError as exc:
        log.error("bad configuration: %s", exc)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
