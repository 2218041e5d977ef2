"""ibsim benchmark: order round trip and streaming CPU.

Run: .venv/bin/python bench/ibsim_bench.py [--orders 1000] [--stream-seconds 20]

1. placeOrder -> execDetails round trip of a market order, measured in the ib_async client
   (gateway in the same process, real loopback socket), p50/p99 over N orders.
2. CPU of a standalone gateway process (process CPU time / wall time) while it streams
   5-second real-time bars for 50 symbols at speed 60 to one ib_async client.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import sys
import time

from ib_async import IB, MarketOrder, Stock

from ibsim import SimGateway

# A Monday 10:00 New York: stocks are trading.
START = dt.datetime(2024, 3, 4, 15, 0, tzinfo=dt.UTC)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def round_trip(n: int) -> None:
    async with SimGateway(seed=1, speed=1, start=START) as gw:
        ib = IB()
        await ib.connectAsync("127.0.0.1", gw.port, clientId=1, timeout=5)
        # ib_async throttles itself to 45 requests/s (IB's pacing); 1,000 back-to-back orders
        # would measure that throttle, not the round trip.
        ib.client.MaxRequests = 0
        (aapl,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        waiting: dict[int, asyncio.Future[float]] = {}

        def on_fill(trade, fill) -> None:
            fut = waiting.pop(trade.order.orderId, None)
            if fut is not None and not fut.done():
                fut.set_result(time.perf_counter())

        ib.execDetailsEvent += on_fill
        received: dict[int, float] = {}
        filled: dict[int, float] = {}
        gw.hooks.order_received.connect(lambda r: received.setdefault(r.order_id, r.wall_time))
        gw.hooks.fill.connect(lambda r: filled.setdefault(r.execution.order_id, r.wall_time))
        loop = asyncio.get_running_loop()
        samples, server = [], []
        for i in range(n + 20):
            order = MarketOrder("BUY" if i % 2 == 0 else "SELL", 1)
            fut = loop.create_future()
            t0 = time.perf_counter()
            trade = ib.placeOrder(aapl, order)
            waiting[trade.order.orderId] = fut
            t1 = await asyncio.wait_for(fut, 5)
            if i >= 20:  # warm-up excluded
                samples.append((t1 - t0) * 1000)
                oid = trade.order.orderId
                server.append((filled[oid] - received[oid]) * 1000)
        ib.disconnect()
    print(f"placeOrder -> execDetails round trip, market order, {n} orders (client-side, "
          "client throttle off):")  # fmt: skip
    print(f"  p50 {statistics.median(samples):.3f} ms   p99 {_pct(samples, 0.99):.3f} ms   "
          f"max {max(samples):.3f} ms   (goal p99 <= 2 ms)")  # fmt: skip
    print(f"  inside ibsim (placeOrder received -> fill booked): p50 "
          f"{statistics.median(server):.3f} ms   p99 {_pct(server, 0.99):.3f} ms")  # fmt: skip


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(parts[11]) + int(parts[12])) / ticks  # utime + stime


async def stream_cpu(seconds: float, symbols: int) -> None:
    names = [f"SYM{i:02d}" for i in range(symbols)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys, ibsim.cli; sys.exit(ibsim.cli.main(sys.argv[1:]))",
        "--port", "0", "--speed", "60", "--start", START.isoformat(), "--log-level", "WARNING",
        "--symbols", *names,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    line = (await proc.stdout.readline()).decode()
    port = int(line.split("port=")[1].split()[0])
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=1, timeout=10)
    contracts = await ib.qualifyContractsAsync(*(Stock(s, "SMART", "USD") for s in names))
    counts = {"bars": 0}

    def on_bar(bars, has_new) -> None:
        counts["bars"] += 1

    ib.barUpdateEvent += on_bar
    for c in contracts:
        ib.reqRealTimeBars(c, 5, "TRADES", False)
    await asyncio.sleep(2.0)  # settle: first bars, caches warm
    counts["bars"] = 0
    cpu0, wall0, client0 = _cpu_seconds(proc.pid), time.perf_counter(), time.process_time()
    await asyncio.sleep(seconds)
    cpu1, wall1, client1 = _cpu_seconds(proc.pid), time.perf_counter(), time.process_time()
    bars = counts["bars"]
    ib.disconnect()
    proc.terminate()
    await proc.wait()
    wall = wall1 - wall0
    print(f"streaming 5-second real-time bars, {symbols} symbols, speed 60, {wall:.1f} s wall:")
    print(f"  bars received {bars} ({bars / wall:.0f}/s; expected {symbols * 12}/s)")
    print(f"  ibsim process CPU {100 * (cpu1 - cpu0) / wall:.1f}% of one core "
          f"(goal < 30%); ib_async client CPU {100 * (client1 - client0) / wall:.1f}%")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--stream-seconds", type=float, default=20.0)
    parser.add_argument("--symbols", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(round_trip(args.orders))
    asyncio.run(stream_cpu(args.stream_seconds, args.symbols))


if __name__ == "__main__":
    main()
