"""Telegram front-end benchmarks against the fake Bot API on 127.0.0.1; prints figures.

1. fill event published → sendMessage received by the Bot API server: p50 / p99 (goal p99 ≤ 100 ms)
2. event-loop lag p99 while the Bot API hangs and fills keep coming (goal ≤ 5 ms)
3. TODO(ibsim): /flatten confirm with 20 positions and 20 resting orders → every cancel and
   closing order received by ibsim (goal ≤ 250 ms). Needs the real engine on ibsim; see below.

Run: .venv/bin/python bench/telegram_bench.py
"""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("PTB_TIMEDELTA", "true")

from engine.events import FillEvent
from tests.bot.fake_control import FakeControl, make_fill
from tests.bot.harness import OPERATOR, LagProbe, MemoryOutbox, running_front_end
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


# TODO(ibsim): /flatten confirm benchmark. Needs the real engine's ControlAPI on ibsim:
#   1. start ibsim + engine (paper mode) with 20 symbols, open 20 positions and place
#      20 resting limit orders;
#   2. run `running_front_end(api, engine_control, journal)`;
#   3. inject "/flatten", press the "yes" button from the prompt (api.buttons(prompt));
#   4. measure from the injected press to the moment ibsim has received every cancelOrder
#      and every closing order (ibsim's request log), goal ≤ 250 ms; print p50/p99 over runs.


async def main() -> None:
    logging.basicConfig(level=logging.ERROR)
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
    print("/flatten confirm → orders at ibsim: TODO, needs the engine on ibsim")


if __name__ == "__main__":
    asyncio.run(main())
