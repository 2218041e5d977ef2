"""Signal latency: ibsim emits the bar that completes a crossover → ibsim receives placeOrder.

Two runs on the same seeded market (20 symbols, 5-second bars, SMA 2/4 crossings with
reversal so every crossing is an order):
  engine: tradebot's full path (bar checks, strategy, risk, write-ahead journal, ib_async);
  bare:   an ib_async script that computes the same crossings and places a market order,
          with no engine and no journal (the floor).
The gateway runs in a process of its own, as IB Gateway does; it timestamps the bars it emits
and the orders it receives with the system-wide monotonic clock (perf_counter), and the
latency of an order is its arrival minus the emission of the last bar of its symbol.
Prints p50/p99 of both, the ratio, and the engine's RSS after warm-up.

    .venv/bin/python bench/latency.py [--signals 500] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import signal
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from ib_async import IB, MarketOrder, Stock

from engine.broker import IBBroker
from engine.config import load_settings
from engine.engine import Engine
from engine.indicators import SMA
from engine.journal import Journal

SYMBOLS = [f"LAT{i:02d}" for i in range(20)]
# ib_async paces its requests at 45/s; keep the order rate well under it so pacing is not
# what gets measured.
SPEED = 20.0
SEED = 7
# Orders in the first seconds share ib_async's 45-messages-per-second budget with the start-up
# requests (contract details, history, bar subscriptions) and wait in its throttle; the
# benchmark measures the steady state after them.
SETTLE_SECONDS = 2.0


# --- the gateway process ------------------------------------------------------------------


async def serve_gateway(records_path: Path) -> None:
    """Run ibsim, print its port, record bar emissions and order arrivals until SIGTERM."""
    from ibsim import SimGateway
    from ibsim.clock import default_start

    bars: list[tuple[int, str, float]] = []
    orders: list[tuple[int, str, float]] = []
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    start = default_start() + 90 * 60  # ninety minutes into a session: history exists
    async with SimGateway(seed=SEED, speed=SPEED, symbols=SYMBOLS, start=start) as gateway:
        gateway.hooks.bar_emitted.connect(
            lambda r: bars.append((r.client_id, r.symbol, r.wall_time))
            if r.kind == "realtime" else None
        )
        gateway.hooks.order_received.connect(
            lambda r: orders.append((r.client_id, r.request.contract.symbol, r.wall_time))
        )
        print(gateway.port, flush=True)
        await stop.wait()
    # The gateway is stopped: nothing is left on this loop to block.
    records_path.write_text(json.dumps({"bars": bars, "orders": orders}))  # noqa: ASYNC240


class GatewayProcess:
    def __init__(self, records_path: Path) -> None:
        self.records_path = records_path
        self.process: asyncio.subprocess.Process | None = None
        self.port = 0

    async def __aenter__(self) -> GatewayProcess:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve-gateway", str(self.records_path),
            stdout=asyncio.subprocess.PIPE,
        )
        assert self.process.stdout is not None
        self.port = int(await self.process.stdout.readline())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        await self.process.wait()

    def latencies(self, client_id: int) -> list[float]:
        records = json.loads(self.records_path.read_text())
        events = [("bar", *bar) for bar in records["bars"]]
        events += [("order", *order) for order in records["orders"]]
        events.sort(key=lambda event: event[3])
        last_bar: dict[str, float] = {}
        first_order: float | None = None
        latencies = []
        for kind, client, symbol, wall in events:
            if client != client_id:
                continue
            if kind == "bar":
                last_bar[symbol] = wall
                continue
            first_order = wall if first_order is None else first_order
            if wall - first_order >= SETTLE_SECONDS and symbol in last_bar:
                latencies.append(wall - last_bar[symbol])
        return latencies


# --- the two clients ----------------------------------------------------------------------


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_seconds(signals: int) -> float:
    # About 20 orders a second come out of this market; leave room for the settling.
    return SETTLE_SECONDS + signals / 15


async def run_engine(signals: int, workdir: Path) -> tuple[list[float], float]:
    settings = load_settings(
        None,
        symbols=",".join(SYMBOLS),
        bar_size="5 secs",
        strategy="sma_cross",
        strategy_params="fast=2,slow=4,allow_short=true",
        order_quantity=1,
        max_position=10,
        max_orders_per_minute=100_000,
        max_notional=1e9,
        max_daily_loss=1e9,
        db_path=workdir / "bench.sqlite3",
    )
    async with GatewayProcess(workdir / "engine.json") as gateway:
        journal = await Journal.open(settings.db_path)
        broker = IBBroker.from_settings(settings, host="127.0.0.1", port=gateway.port)
        engine = Engine(settings, journal, broker, mode="sim", clock_speed=SPEED)
        await engine.start()
        await asyncio.wait_for(engine.ready.wait(), 60)
        rss = rss_mb()
        await asyncio.sleep(run_seconds(signals))
        await engine.stop()
        await journal.close()
    return gateway.latencies(settings.ib_client_id)[:signals], rss


async def run_bare(signals: int, workdir: Path) -> list[float]:
    client_id = 2
    async with GatewayProcess(workdir / "bare.json") as gateway:
        ib = IB()
        await ib.connectAsync("127.0.0.1", gateway.port, clientId=client_id)
        contracts = await ib.qualifyContractsAsync(*(Stock(s, "SMART", "USD") for s in SYMBOLS))
        for contract in contracts:
            bars = ib.reqRealTimeBars(contract, 5, "TRADES", True)
            bars.updateEvent += crossing_trader(ib, contract)
        await asyncio.sleep(run_seconds(signals))
        ib.disconnect()
    return gateway.latencies(client_id)[:signals]


def crossing_trader(ib: IB, contract: Stock) -> Callable[..., None]:
    """SMA 2/4 crossings with reversal, one market order per crossing, nothing else."""
    fast, slow = SMA(2), SMA(4)
    previous: tuple[float, float] | None = None
    position = 0.0

    def on_bar(bars, has_new_bar: bool) -> None:
        nonlocal previous, position
        if not has_new_bar:
            return
        close = bars[-1].close
        f, s = fast.update(close), slow.update(close)
        if f is None or s is None:
            return
        before, previous = previous, (f, s)
        if before is None:
            return
        target = position
        if f > s and before[0] <= before[1]:
            target = 1.0
        elif f < s and before[0] >= before[1]:
            target = -1.0
        if target == position:
            return
        delta, position = target - position, target
        ib.placeOrder(contract, MarketOrder("BUY" if delta > 0 else "SELL", abs(delta)))

    return on_bar


# --- report -------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def describe(name: str, latencies: list[float]) -> tuple[float, float]:
    p50 = statistics.median(latencies) * 1000
    p99 = percentile(latencies, 0.99) * 1000
    print(f"{name:<7} n={len(latencies):4d}  p50 {p50:6.3f} ms  p99 {p99:6.3f} ms  "
          f"max {max(latencies) * 1000:6.3f} ms")
    return p50, p99


async def main(signals: int, rounds: int) -> int:
    print(f"bar completing a crossover -> placeOrder at ibsim (own process), {len(SYMBOLS)} "
          f"symbols, 5-second bars, speed {SPEED:g}x; {rounds} round(s), engine then bare")
    ratios: list[tuple[float, float]] = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as workdir:
            engine_latencies, rss = await run_engine(signals, Path(workdir))
            bare_latencies = await run_bare(signals, Path(workdir))
        engine_p50, engine_p99 = describe("engine", engine_latencies)
        bare_p50, bare_p99 = describe("bare", bare_latencies)
        ratios.append((engine_p50 / bare_p50, engine_p99 / bare_p99))
        print(f"ratio   p50 {ratios[-1][0]:.2f}x  p99 {ratios[-1][1]:.2f}x "
              f"(goal: p50 <= 1.5x and p99 <= 2x bare); engine RSS after warm-up {rss:.0f} MB")
    if rounds > 1:
        print(f"median over {rounds} rounds: ratio p50 "
              f"{statistics.median(r[0] for r in ratios):.2f}x  p99 "
              f"{statistics.median(r[1] for r in ratios):.2f}x")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=1, help="engine/bare pairs to run")
    parser.add_argument("--serve-gateway", metavar="RECORDS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_gateway:
        asyncio.run(serve_gateway(Path(args.serve_gateway)))
        sys.exit(0)
    sys.exit(asyncio.run(main(args.signals, args.rounds)))
