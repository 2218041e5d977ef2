"""Telegram front-end benchmarks against the fake Bot API on 127.0.0.1; prints figures.

1. fill event published → sendMessage received by the Bot API server: p50 / p99 (goal p99 ≤ 100 ms)
2. event-loop lag p99 while the Bot API hangs and fills keep coming (goal ≤ 5 ms)
3. /flatten confirm with 20 positions and 20 resting orders (20 symbols), real engine on ibsim
   → every cancel and closing order received by ibsim: p50 / p99 (goal ≤ 250 ms)

Run: .venv/bin/python bench/telegram_bench.py
"""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("PTB_TIMEDELTA", "true")

from ib_async.client import Client

from engine.broker import IBBroker
from engine.control import Control
from engine.domain import OrderStatus, OrderType, Side
from engine.engine import Engine
from engine.events import FillEvent
from engine.journal import Journal
from ibsim import SimGateway
from ibsim.clock import default_start
from ibsim.hooks import OrderReceived
from tests.bot.fake_control import FakeControl, make_fill
from tests.bot.harness import OPERATOR, LagProbe, MemoryOutbox, running_front_end
from tests.engine.conftest import make_settings
from tests.fakebotapi import FakeBotAPI

FILLS = 300
PACE = 0.05  # between fills: under Telegram's 30 messages/s, which AIORateLimiter enforces
NO_DIGEST = {"burst_limit": 1_000_000}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * p / 100), len(ordered) - 1)]


async def fill_to_send_latency() -> list[float]:
    control = FakeControl()
    latencies: list[float] = []
    async with (
        FakeBotAPI() as api,
        running_front_end(api, control, MemoryOutbox(), {OPERATOR}, tune=NO_DIGEST),
    ):
        for i in range(FILLS):
            ref = f"ref-b{i}"
            published = time.monotonic()
            control.publish(FillEvent(make_fill(exec_id=f"b{i}"), position_after=float(i)))
            request = await api.wait_for(
                "sendMessage", lambda r, ref=ref: ref in r.text, answered=False
            )
            latencies.append((request.at - published) * 1000)
            await asyncio.sleep(PACE)
    return latencies


async def loop_lag_while_api_hangs(seconds: float = 3.0, rate: float = 200.0) -> LagProbe:
    control = FakeControl()
    async with (
        FakeBotAPI() as api,
        running_front_end(api, control, MemoryOutbox(), {OPERATOR}, tune=NO_DIGEST),
    ):
        api.fail("hang", seconds=seconds)  # every method but getUpdates
        api.fail("hang", "getUpdates", seconds=seconds)
        async with LagProbe(interval=0.001) as probe:
            deadline = time.monotonic() + seconds
            i = 0
            while time.monotonic() < deadline:
                control.publish(FillEvent(make_fill(exec_id=f"h{i}"), position_after=float(i)))
                i += 1
                await asyncio.sleep(1 / rate)  # the engine's own pace, not a wait on Telegram
        api.heal()
    return probe


# --- /flatten confirm → orders at ibsim (real engine) -----------------------------------------

# 20 symbols: the catalog's stocks plus made-up NYSE names (ibsim invents those).
FLATTEN_SYMBOLS = (
    "AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "SPY", "QQQ", "IBM", "KO", "JPM",
    "XAA", "XBB", "XCC", "XDD", "XEE", "XFF", "XGG", "XHH", "XII", "XJJ",
)  # fmt: skip
FLATTEN_RUNS = 10
# The strategy must not touch the book: hourly bars at 60x from 11:01 New York, so the first
# bar it could act on closes at 12:00, a minute of wall time away (tests/bot/test_engine_e2e.py
# explains why not earlier than 11:00).
FLATTEN_SPEED = 60.0
FLATTEN_START_OFFSET = 91 * 60  # after ibsim's default start, 09:30 New York


async def _set_up_book(engine: Engine) -> set[int]:
    """One position (long or short 10) and one resting limit order in each of the 20 symbols;
    returns the ib order ids of the resting orders."""
    sides = [Side.BUY if i % 2 == 0 else Side.SELL for i in range(len(FLATTEN_SYMBOLS))]
    entries = await asyncio.gather(
        *(
            engine.orders.submit(symbol, side, 10, "bench position")
            for symbol, side in zip(FLATTEN_SYMBOLS, sides, strict=True)
        )
    )
    assert await engine.orders.wait_done([o.order_ref for o in entries], 20)
    assert all(o.status is OrderStatus.FILLED for o in entries), entries
    await engine.wait_positions_settled(5)
    resting = []
    for symbol in FLATTEN_SYMBOLS:
        limit = round(engine.portfolio.last_price[symbol] * 0.8, 2)
        resting.append(
            await engine.orders.submit(symbol, Side.BUY, 1, "bench resting", OrderType.LIMIT, limit)
        )
    for order in resting:
        assert await engine.orders.wait_status(order.order_ref, {OrderStatus.SUBMITTED}, 10)
    return {o.ib_order_id for o in resting if o.ib_order_id}


async def _one_flatten(gateway: SimGateway, engine: Engine, api: FakeBotAPI) -> tuple[float, float]:
    """Press "yes" on a /flatten prompt; return (ms until the first closing order reached ibsim,
    ms until the last of the 20 did).

    ibsim has no cancel hook, so cancels are bounded, not timed: Control.flatten sends every
    cancelOrder and waits for ibsim's "Cancelled" status of each before it sends the first
    closing order, so each cancel was received (and applied: ibsim handles it synchronously)
    before the first closing order arrived. At that moment we also check that ibsim holds none
    of the resting orders any more. The figure is therefore "press → last cancel and last
    closing order received", the goal's definition."""
    resting_ids = await _set_up_book(engine)
    assert {o.order_id for o in gateway.open_orders} == resting_ids
    assert len(gateway.positions()) == len(FLATTEN_SYMBOLS)
    # Setting the book up just sent 40 orders; ib_async sends at most Client.MaxRequests (45)
    # messages per RequestsInterval (1 s), as IB allows ~50/s, and queues the rest. Let that
    # window empty, as it would have long before a real /flatten, so the 20 cancels and 20
    # closing orders (40 messages) go out unthrottled; throttling during the measurement is
    # detected and reported below.
    await asyncio.sleep(Client.RequestsInterval + 0.1)
    throttled: list[float] = []
    client = engine.broker.ib.client

    since = time.monotonic()
    api.inject_command("/flatten", chat_id=OPERATOR)
    prompt = await api.wait_for(
        "sendMessage", lambda r: r.at >= since and "reply_markup" in r.params
    )
    yes = next(data for text, data in api.buttons(prompt) if "Yes" in text)

    closing: list[OrderReceived] = []
    resting_left_at_first_close: list[int] = []
    all_closed = asyncio.get_running_loop().create_future()

    def on_order(record: OrderReceived) -> None:
        if record.request.order_type != "MKT":
            return
        if not closing:
            resting_left_at_first_close.extend(
                o.order_id for o in gateway.open_orders if o.order_id in resting_ids
            )
        closing.append(record)
        if len(closing) == len(FLATTEN_SYMBOLS) and not all_closed.done():
            all_closed.set_result(None)

    def on_throttle() -> None:
        throttled.append(time.perf_counter())

    gateway.hooks.order_received.connect(on_order)
    client.throttleStart += on_throttle
    try:
        pressed = time.perf_counter()  # the hooks' wall_time is perf_counter too
        api.press_button(yes, chat_id=OPERATOR, message_id=prompt.result["message_id"])
        await asyncio.wait_for(all_closed, 20)
    finally:
        gateway.hooks.order_received.disconnect(on_order)
        client.throttleStart -= on_throttle
    if throttled:
        print(f"  (ib_async throttled requests {(throttled[0] - pressed) * 1000:.0f} ms in)")
    assert resting_left_at_first_close == [], resting_left_at_first_close
    assert {r.request.contract.symbol for r in closing} == set(FLATTEN_SYMBOLS)
    done = await api.wait_for(
        "editMessageText",
        lambda r: r.int("message_id") == prompt.result["message_id"] and "flat (bot)" in r.text,
        timeout=20,
    )
    assert "NOT flat" not in done.text, done.text
    await engine.wait_positions_settled(5)
    assert gateway.positions() == {} and gateway.open_orders == []
    first = (closing[0].wall_time - pressed) * 1000
    last = (closing[-1].wall_time - pressed) * 1000
    return first, last


async def flatten_to_ibsim(runs: int = FLATTEN_RUNS) -> list[tuple[float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(
            Path(tmp), symbols=",".join(FLATTEN_SYMBOLS), bar_size="1 hour",
            strategy_params="fast=2,slow=3",
        )  # fmt: skip
        async with SimGateway(
            seed=1, speed=FLATTEN_SPEED, symbols=FLATTEN_SYMBOLS,
            start=default_start() + FLATTEN_START_OFFSET,
        ) as gateway:  # fmt: skip
            journal = await Journal.open(settings.db_path)
            broker = IBBroker.from_settings(settings, host="127.0.0.1", port=gateway.port,
                                            backoff_initial=0.05)
            engine = Engine(settings, journal, broker, mode="sim", clock_speed=FLATTEN_SPEED)
            await engine.start()
            try:
                await asyncio.wait_for(engine.ready.wait(), 30)
                async with (
                    FakeBotAPI() as api,
                    running_front_end(api, Control(engine), journal, {OPERATOR}),
                ):
                    return [await _one_flatten(gateway, engine, api) for _ in range(runs)]
            finally:
                await engine.stop()
                await journal.close()


async def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)  # "Error 202: Order Canceled"
    latencies = await fill_to_send_latency()
    print(f"fill → sendMessage received ({FILLS} fills, {PACE * 1000:.0f} ms apart):")
    print(
        f"  p50 {statistics.median(latencies):6.2f} ms   p99 {percentile(latencies, 99):6.2f} ms"
        f"   max {max(latencies):6.2f} ms   (goal p99 ≤ 100 ms)"
    )
    probe = await loop_lag_while_api_hangs()
    print("event-loop lag while the Bot API hangs (fills at 200/s, 1 ms probe):")
    print(
        f"  p50 {probe.percentile(50):6.2f} ms   p99 {probe.percentile(99):6.2f} ms"
        f"   max {probe.max_ms:6.2f} ms   (goal p99 ≤ 5 ms)"
    )
    results = await flatten_to_ibsim()
    firsts = [first for first, _ in results]
    lasts = [last for _, last in results]
    print(
        f"/flatten confirm → every cancel and closing order at ibsim ({len(FLATTEN_SYMBOLS)} "
        f"positions, {len(FLATTEN_SYMBOLS)} resting orders, {len(results)} runs):"
    )
    print(
        f"  p50 {statistics.median(lasts):6.2f} ms   p99 {percentile(lasts, 99):6.2f} ms"
        f"   max {max(lasts):6.2f} ms   (goal ≤ 250 ms)"
    )
    print(
        f"  of which press → cancels acknowledged, first closing order received: "
        f"p50 {statistics.median(firsts):6.2f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main())
