"""Reusable pieces for front-end tests and benchmarks: an in-memory outbox, a loop-lag probe,
short timings, and a context manager running the Telegram front-end for any ControlAPI against
the fake Bot API."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from bot.telegram.app import TelegramFrontEnd, TelegramTuning
from bot.telegram.ports import Outbox
from engine.control import ControlAPI
from tests.fakebotapi import FakeBotAPI

OPERATOR = 42  # private chat of the operator
READER = 43  # private chat of a read-only user
STRANGER = 666

FAST = TelegramTuning(
    poll_timeout=2,
    read_timeout=1.0,
    connect_timeout=1.0,
    edit_interval=0.05,
    connect_backoff=0.05,
    max_backoff=0.2,
    delivery_backoff=0.05,
    digest_delay=0.3,
    fill_grace=0.2,
    stop_grace=2.0,
    drain_timeout=0.3,
)


@dataclass
class MemoryOutbox:
    """The outbox/journal interface (bot.telegram.ports.Outbox) in memory."""

    rows: dict[int, tuple[str, str]] = field(default_factory=dict)
    done: set[int] = field(default_factory=set)
    events: list[tuple[str, str, str, dict[str, Any] | None]] = field(default_factory=list)
    state: dict[str, str] = field(default_factory=dict)
    _next: int = 1

    async def outbox_add(self, channel: str, payload: str) -> int:
        row_id, self._next = self._next, self._next + 1
        self.rows[row_id] = (channel, payload)
        return row_id

    async def outbox_pending(self, channel: str, limit: int = 100) -> list[tuple[int, str]]:
        pending = [(i, p) for i, (c, p) in sorted(self.rows.items()) if c == channel]
        return [(i, p) for i, p in pending if i not in self.done][:limit]

    async def outbox_done(self, outbox_id: int) -> None:
        self.done.add(outbox_id)

    async def log_event(
        self, level: str, kind: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        self.events.append((level, kind, message, details))

    async def get_state(self, key: str, default: str | None = None) -> str | None:
        return self.state.get(key, default)

    async def set_state(self, key: str, value: str) -> None:
        self.state[key] = value

    def kinds(self) -> list[str]:
        return [kind for _, kind, _, _ in self.events]


class LagProbe:
    """Measures event-loop lag: a task that asks to wake every `interval` and records how late
    it woke. Use as `async with LagProbe() as probe: ...; probe.max_ms`."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.samples.append((time.perf_counter() - start - self.interval) * 1000)

    async def __aenter__(self) -> LagProbe:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    @property
    def max_ms(self) -> float:
        return max(self.samples, default=0.0)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(int(len(ordered) * p / 100), len(ordered) - 1)] if ordered else 0.0


@contextlib.asynccontextmanager
async def running_front_end(
    api: FakeBotAPI,
    control: ControlAPI,
    outbox: Outbox,
    allowed_chat_ids: set[int] | None = None,
    operator_ids: set[int] | None = None,
    **kwargs: Any,
) -> AsyncIterator[TelegramFrontEnd]:
    """Start a TelegramFrontEnd on `api` and wait until it polls; stop it afterwards."""
    tuning = kwargs.pop("tuning", FAST)
    if "tune" in kwargs:
        tuning = replace(tuning, **kwargs.pop("tune"))
    front_end = TelegramFrontEnd(
        token=api.token,
        allowed_chat_ids=allowed_chat_ids if allowed_chat_ids is not None else {OPERATOR, READER},
        operator_ids=operator_ids if operator_ids is not None else {OPERATOR},
        control=control,
        outbox=outbox,
        base_url=api.base_url,
        tuning=tuning,
        **kwargs,
    )
    await front_end.start()
    await asyncio.wait_for(front_end.online.wait(), 5)
    await api.wait_for("getUpdates", answered=False)
    try:
        yield front_end
    finally:
        await front_end.stop()
