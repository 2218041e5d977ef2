"""Soak, "months in minutes": the engine on ibsim for simulated days, IB's rhythm included.

The real engine (built as bench/latency.py builds it) trades 20 made-up NYSE stocks on 1-minute
bars (sma_cross 2/4 with reversal, so it trades many times a day) against ibsim in a process of
its own, on an accelerated clock, from a fixed Sunday for --days simulated days, weekends
included, with the gateway's daily restart (23:45 New York, 3 minutes) and its weekly login
(Sunday 01:00, 2 hours). Seeded: the same market every run.
Prints, per simulated New York day: trades (fills), signals, 1-minute bars closed, how late the
bars reached the strategy (wall time), the engine's RSS and the journal's size; flags a trading
day without trades while the strategy signals; then the time from start to ready and the goals
beside the figures (ready <= 3 s; RSS <= 150 MB, growth <= 5 MB after the first trading
day). --keep DIR keeps the journal for a look afterwards.

Speed, measured on two cores: at 400x every 1-minute bar reaches the strategy (7,800 a
trading day) and about 1,960 trades go through, with the engine at 8% of a core and the gateway
at 4%. At 1000x and above it falls apart, and not for CPU: the orders (about 2,000 in a 23,400 s
session, some 85 a wall second at 1000x) pass ib_async's throttle of 45 requests a second and
queue, the strategy's next crossings are refused ("an order for this symbol is still working"),
and the quiet-stream check (60 simulated seconds, 60 ms of wall time at 1000x) resubscribes in
storms (duplicate and missing bars). 400x is about the limit with this order rate, so a day takes
216 s: --days defaults to 3 (Sunday to Tuesday, about 11 minutes); `--days 30` is a month at
about 1 h 50 min.

    .venv/bin/python bench/soak.py [--days 3] [--speed 400] [--symbols 20] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from array import array
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from engine.broker import IBBroker
from engine.config import load_settings
from engine.domain import Bar
from engine.engine import Engine
from engine.journal import Journal
from engine.market_data import SymbolState

NEW_YORK = ZoneInfo("America/New_York")
# A Sunday at midnight: the weekly login comes first (01:00), then the trading days.
START = dt.datetime(2026, 1, 4, 0, 0, tzinfo=NEW_YORK)
SEED = 10
DAYS = 3
SPEED = 400.0
SYMBOL_COUNT = 20
DAILY_RESTART = "23:45"
RESTART_MINUTES = 3
WEEKLY_OUTAGE = "Sun 01:00"
OUTAGE_HOURS = 2
STRATEGY_PARAMS = "fast=2,slow=4,allow_short=true"
READY_GOAL_SECONDS = 3.0
RSS_GOAL_MB = 150.0
GROWTH_GOAL_MB = 5.0


# --- the gateway process ------------------------------------------------------------------


async def serve_gateway(speed: float, symbol_count: int) -> None:
    """Run ibsim with IB's rhythm, print its port, serve until SIGTERM, then its CPU time."""
    from ibsim import SimGateway

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with SimGateway(
        seed=SEED, speed=speed, symbols=symbols(symbol_count), start=START,
        daily_restart=DAILY_RESTART, restart_minutes=RESTART_MINUTES,
        weekly_outage=WEEKLY_OUTAGE, outage_hours=OUTAGE_HOURS,
    ) as gateway:
        print(gateway.port, flush=True)
        await stop.wait()
    print(time.process_time(), flush=True)


class GatewayProcess:
    def __init__(self, speed: float, symbol_count: int) -> None:
        self.args = ["--speed", str(speed), "--symbols", str(symbol_count)]
        self.process: asyncio.subprocess.Process | None = None
        self.port = 0
        self.cpu_seconds = 0.0

    async def __aenter__(self) -> GatewayProcess:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve-gateway", *self.args,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self.process.stdout is not None
        self.port = int(await self.process.stdout.readline())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.process is not None and self.process.stdout is not None
        self.process.send_signal(signal.SIGTERM)
        self.cpu_seconds = float(await self.process.stdout.readline() or 0)
        await self.process.wait()


def symbols(count: int) -> list[str]:
    return [f"SOAK{i:02d}" for i in range(count)]


# --- what is measured in the engine's process ----------------------------------------------


def rss_mb() -> float:
    """The resident set now (not the peak: growth is what a soak looks for)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def journal_mb(db_path: Path) -> float:
    files = [db_path, *(db_path.with_name(db_path.name + s) for s in ("-wal", "-shm"))]
    return sum(f.stat().st_size for f in files if f.exists()) / 1e6


@dataclass
class Day:
    rss_mb: float = 0.0
    journal_mb: float = 0.0
    bars: int = 0
    # wall seconds, bar close -> strategy; packed, so that the bench's own memory stays small
    lateness: array[float] = field(default_factory=lambda: array("d"))
    loop_lag: float = 0.0  # the longest the engine's loop kept a 0.1 s sleep waiting, seconds


class Observer:
    """Counts the 1-minute bars reaching the strategy and how late, and samples RSS and the
    journal's size as each simulated New York day ends."""

    def __init__(self, engine: Engine, speed: float) -> None:
        self.engine = engine
        self.speed = speed
        self.days: dict[dt.date, Day] = defaultdict(Day)
        on_closed = engine.market.on_closed

        def counting(state: SymbolState, bar: Bar, trade: bool) -> None:
            on_closed(state, bar, trade)
            if trade:
                late = (engine.clock.now() - bar.time).total_seconds() - engine.settings.bar_seconds
                day = self.days[new_york_date(bar.time)]
                day.bars += 1
                day.lateness.append(max(late, 0.0) / speed)

        engine.market.on_closed = counting

    def sim_date(self) -> dt.date:
        return new_york_date(self.engine.clock.now())

    async def run_until(self, end: dt.datetime) -> None:
        today = self.sim_date()
        while self.engine.clock.now() < end:
            before = time.perf_counter()
            await asyncio.sleep(0.1)
            lag = time.perf_counter() - before - 0.1
            self.days[today].loop_lag = max(self.days[today].loop_lag, lag)
            if (now := self.sim_date()) != today:
                self.sample(today)
                today = now
        self.sample(today)

    def sample(self, date: dt.date) -> None:
        day = self.days[date]
        day.rss_mb = rss_mb()
        day.journal_mb = journal_mb(self.engine.journal.path)


def new_york_date(at: dt.datetime) -> dt.date:
    return at.astimezone(NEW_YORK).date()


# --- the run ------------------------------------------------------------------------------


@dataclass
class Run:
    ready_seconds: float
    rss_start: float
    rss_end: float
    days: dict[dt.date, Day]
    wall_seconds: float
    engine_cpu: float
    gateway_cpu: float
    db_path: Path


async def soak(days: int, speed: float, symbol_count: int, workdir: Path) -> Run:
    settings = load_settings(
        None,
        symbols=",".join(symbols(symbol_count)),
        bar_size="1 min",
        strategy="sma_cross",
        strategy_params=STRATEGY_PARAMS,
        order_quantity=1,
        max_position=10,
        max_orders_per_minute=100_000,
        max_notional=1e9,
        max_daily_loss=1e9,
        db_path=workdir / "soak.sqlite3",
        log_dir=None,
    )
    rss_start = rss_mb()
    async with GatewayProcess(speed, symbol_count) as gateway:
        journal = await Journal.open(settings.db_path)
        broker = IBBroker.from_settings(settings, host="127.0.0.1", port=gateway.port)
        engine = Engine(settings, journal, broker, mode="sim", clock_speed=speed)
        observer = Observer(engine, speed)
        began, cpu_began = time.monotonic(), time.process_time()
        await engine.start()
        await asyncio.wait_for(engine.ready.wait(), 60)
        ready_seconds = time.monotonic() - began
        await observer.run_until(START + dt.timedelta(days=days))
        await engine.stop()
        await journal.close()
        wall_seconds = time.monotonic() - began
        engine_cpu = time.process_time() - cpu_began
        rss_end = rss_mb()
    return Run(ready_seconds, rss_start, rss_end, dict(observer.days), wall_seconds,
               engine_cpu, gateway.cpu_seconds, settings.db_path)


# --- report -------------------------------------------------------------------------------


def per_day(db_path: Path, table: str, column: str) -> Counter[dt.date]:
    with sqlite3.connect(db_path) as db:
        rows = db.execute(f"SELECT {column} FROM {table}").fetchall()
    return Counter(new_york_date(dt.datetime.fromisoformat(at)) for (at,) in rows)


def event_kinds(db_path: Path) -> Counter[str]:
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT kind, COUNT(*) FROM events GROUP BY kind").fetchall()
    return Counter(dict(rows))


def percentile(values: array[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0


def report(run: Run, days: int) -> None:
    fills = per_day(run.db_path, "fills", "time")
    signals = per_day(run.db_path, "signals", "at")
    print(f"{'day':<14}{'trades':>7}{'signals':>8}{'bars':>6}{'late p99':>10}{'late max':>10}"
          f"{'loop lag':>10}{'RSS MB':>8}{'journal MB':>12}")
    flagged = []
    previous_journal = 0.0
    for i in range(days):
        date = START.date() + dt.timedelta(days=i)
        day = run.days.get(date, Day())
        trading = date.weekday() < 5
        flag = ""
        if trading and signals[date] and not fills[date]:
            flag = "  <- no trades while the strategy signals"
            flagged.append(date)
        elif trading and not day.bars:
            flag = "  <- no bars on a trading day"
            flagged.append(date)
        late = (f"{percentile(day.lateness, 0.99):9.2f}s{max(day.lateness):9.2f}s"
                if day.lateness else f"{'-':>10}{'-':>10}")
        print(f"{date:%a %Y-%m-%d}{fills[date]:>7}{signals[date]:>8}{day.bars:>6}{late}"
              f"{day.loop_lag:9.2f}s{day.rss_mb:8.1f}{day.journal_mb:8.2f} "
              f"+{day.journal_mb - previous_journal:.2f}{flag}")
        previous_journal = day.journal_mb or previous_journal
    trading_days = [
        START.date() + dt.timedelta(days=i) for i in range(days)
        if (START.date() + dt.timedelta(days=i)).weekday() < 5
    ]
    per_trading_day = [fills[d] for d in trading_days]
    print(f"trades per trading day: median {statistics.median(per_trading_day):.0f}, "
          f"min {min(per_trading_day)}, max {max(per_trading_day)}; "
          f"trading days flagged (no trades while signalling, or no bars): {len(flagged)}")

    sampled = [run.days[d].rss_mb for d in sorted(run.days) if run.days[d].rss_mb]
    first_day = next((run.days[d].rss_mb for d in trading_days if d in run.days),
                     run.rss_end)
    print(f"start to ready {run.ready_seconds:.2f} s (goal <= {READY_GOAL_SECONDS:g} s)")
    last_day = sampled[-1] if sampled else run.rss_end
    print(f"RSS: start {run.rss_start:.1f} MB, end of the first trading day {first_day:.1f} MB, "
          f"end of the last day {last_day:.1f} MB, after stop {run.rss_end:.1f} MB "
          f"(goal: steady state <= {RSS_GOAL_MB:g} MB); growth after the first trading day "
          f"{last_day - first_day:+.1f} MB (goal <= {GROWTH_GOAL_MB:g} MB)")
    journal_end = journal_mb(run.db_path)
    print(f"journal: {journal_end:.2f} MB at the end, "
          f"{journal_end / days:.2f} MB per simulated day")
    print(f"wall {run.wall_seconds:.0f} s; CPU: engine {run.engine_cpu:.0f} s "
          f"({run.engine_cpu / run.wall_seconds:.0%}), gateway {run.gateway_cpu:.0f} s "
          f"({run.gateway_cpu / run.wall_seconds:.0%})")
    kinds = event_kinds(run.db_path)
    print("journaled events: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()))


async def main(days: int, speed: float, symbol_count: int, journal_dir: Path | None) -> int:
    print(f"soak: {symbol_count} symbols, 1-minute bars, sma_cross {STRATEGY_PARAMS}; "
          f"{days} simulated days from {START:%a %Y-%m-%d %H:%M} New York at {speed:g}x; "
          f"daily restart {DAILY_RESTART} ({RESTART_MINUTES} min), weekly login "
          f"{WEEKLY_OUTAGE} ({OUTAGE_HOURS} h); seed {SEED}")
    if journal_dir is not None:
        report(await soak(days, speed, symbol_count, journal_dir), days)
        return 0
    with tempfile.TemporaryDirectory() as workdir:
        report(await soak(days, speed, symbol_count, Path(workdir)), days)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=DAYS, help="simulated days, weekends too")
    parser.add_argument("--speed", type=float, default=SPEED,
                        help="simulated seconds per wall second")
    parser.add_argument("--symbols", type=int, default=SYMBOL_COUNT)
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep the journal in DIR (default: a temporary directory)")
    parser.add_argument("--serve-gateway", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_gateway:
        asyncio.run(serve_gateway(args.speed, args.symbols))
        sys.exit(0)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    sys.exit(asyncio.run(main(args.days, args.speed, args.symbols, args.keep)))
