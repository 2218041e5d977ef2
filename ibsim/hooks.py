"""Observation hooks for tests and benchmarks: callbacks plus awaitable "next event"."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .orders import Execution

T = TypeVar("T")


class Hook(Generic[T]):
    """A synchronous event: ``connect(callback)``; ``await wait(predicate)`` for the next one."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._callbacks: list[Callable[[T], Any]] = []
        self._waiters: list[tuple[Callable[[T], bool] | None, asyncio.Future[T]]] = []

    def connect(self, callback: Callable[[T], Any]) -> None:
        self._callbacks.append(callback)

    def disconnect(self, callback: Callable[[T], Any]) -> None:
        self._callbacks.remove(callback)

    def emit(self, record: T) -> None:
        for cb in list(self._callbacks):
            cb(record)
        if self._waiters:
            keep = []
            for predicate, fut in self._waiters:
                if fut.done():
                    continue
                if predicate is None or predicate(record):
                    fut.set_result(record)
                else:
                    keep.append((predicate, fut))
            self._waiters = keep

    async def wait(
        self, predicate: Callable[[T], bool] | None = None, timeout: float | None = 10.0
    ) -> T:
        """The next record (matching ``predicate``) emitted after this call."""
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, fut))
        return await asyncio.wait_for(fut, timeout)


@dataclass(frozen=True, slots=True)
class ClientEvent:
    wall_time: float  # time.perf_counter()
    client_id: int
    peer: str


@dataclass(frozen=True, slots=True)
class OrderReceived:
    wall_time: float
    sim_time: float
    client_id: int
    order_id: int
    request: Any  # requests.PlaceOrder


@dataclass(frozen=True, slots=True)
class BarEmitted:
    wall_time: float
    sim_time: float
    client_id: int
    req_id: int
    symbol: str
    kind: str  # "realtime" or "keepUpToDate"
    bar_time: float  # bar start, epoch seconds


@dataclass(frozen=True, slots=True)
class FillRecord:
    wall_time: float
    execution: Execution


class Hooks:
    """All hooks a gateway offers."""

    def __init__(self) -> None:
        self.client_connected: Hook[ClientEvent] = Hook("client_connected")
        self.client_disconnected: Hook[ClientEvent] = Hook("client_disconnected")
        self.order_received: Hook[OrderReceived] = Hook("order_received")
        self.bar_emitted: Hook[BarEmitted] = Hook("bar_emitted")
        self.fill: Hook[FillRecord] = Hook("fill")
