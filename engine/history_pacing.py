"""IB's historical-data pacing, as a pacer that says how long to wait before the next request.

IB answers a request that breaks these rules with error 162 ("pacing violation") and, repeated,
with a disconnect (IB_NOTES.md, Pacing):

- no identical request (same contract, end, duration, bar size, data) within 15 seconds;
- no six or more requests for one contract within 2 seconds;
- no more than 60 requests within any 10 minutes (IB enforces it for bars of 30 seconds or
  less; larger bars are throttled by the gateway itself, so `window_limit` can be lifted).

The pacer is pure bookkeeping over an injected monotonic clock; `wait` sleeps through an
injected sleep, so tests run it on a fake clock.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable

IDENTICAL_SECONDS = 15.0
CONTRACT_SECONDS, CONTRACT_LIMIT = 2.0, 5  # at most 5 in any 2 s: the sixth is a violation
WINDOW_SECONDS, WINDOW_LIMIT = 600.0, 60
# A little more than the rule, so the gateway's clock and ours never disagree at the edge.
MARGIN = 0.05


class HistoricalPacer:
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        *,
        window_limit: int | None = WINDOW_LIMIT,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._window_limit = window_limit
        self._sent: deque[float] = deque()  # every request, within the last 10 minutes
        self._by_contract: dict[Hashable, deque[float]] = {}
        self._identical: dict[Hashable, float] = {}

    def delay(self, contract: Hashable, request: Hashable) -> float:
        """Seconds to wait before sending `request` (its full identity) for `contract`."""
        now = self._clock()
        self._forget(now)
        wait = 0.0
        last = self._identical.get(request)
        if last is not None:
            wait = max(wait, last + IDENTICAL_SECONDS + MARGIN - now)
        recent = self._by_contract.get(contract, deque())
        if len(recent) >= CONTRACT_LIMIT:
            wait = max(wait, recent[-CONTRACT_LIMIT] + CONTRACT_SECONDS + MARGIN - now)
        if self._window_limit is not None and len(self._sent) >= self._window_limit:
            wait = max(wait, self._sent[-self._window_limit] + WINDOW_SECONDS + MARGIN - now)
        return max(wait, 0.0)

    def sent(self, contract: Hashable, request: Hashable) -> None:
        """Count a request as sent now."""
        now = self._clock()
        self._sent.append(now)
        self._by_contract.setdefault(contract, deque()).append(now)
        self._identical[request] = now

    async def wait(self, contract: Hashable, request: Hashable) -> float:
        """Wait until `request` may go, count it as sent, and return the seconds waited."""
        waited = 0.0
        while (delay := self.delay(contract, request)) > 0:
            await self._sleep(delay)
            waited += delay
        self.sent(contract, request)
        return waited

    def _forget(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - WINDOW_SECONDS:
            self._sent.popleft()
        for times in self._by_contract.values():
            while times and times[0] <= now - CONTRACT_SECONDS:
                times.popleft()
        for request, at in list(self._identical.items()):
            if at <= now - IDENTICAL_SECONDS:
                del self._identical[request]
