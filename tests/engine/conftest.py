"""Fixtures for end-to-end engine tests: ibsim on loopback, the real ib_async client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from engine.broker import IBBroker
from engine.clock import BrokerClock
from engine.config import Settings, load_settings
from engine.control import Control
from engine.domain import ConnectionState, OrderStatus, Side, Signal
from engine.engine import Engine
from engine.events import ConnectionEvent, EventBus, Subscription
from engine.journal import Journal
from engine.journal_writer import JournalWriter
from engine.recorder import Recorder
from ibsim import SimGateway

SPEED = 600.0  # simulated seconds per wall second: a 5-second bar every ~8 ms
NO_TRACE_GRACE = 0.5  # seconds an order sent but not seen at the broker stays "unknown"

FAST_SETTINGS: dict[str, Any] = {
    "symbols": "AAPL,MSFT",
    "bar_size": "5 secs",
    "strategy": "sma_cross",
    "strategy_params": "fast=2,slow=4",
    "order_quantity": 10,
    "max_orders_per_minute": 1000,
    "max_notional": 1_000_000,
    "max_daily_loss": 1_000_000,
}


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values = {**FAST_SETTINGS, "db_path": tmp_path / "journal.sqlite3",
              "log_dir": tmp_path / "logs", **overrides}
    return load_settings(None, **values)


@asynccontextmanager
async def sim_gateway(**options: Any) -> AsyncIterator[SimGateway]:
    options.setdefault("seed", 1)
    options.setdefault("speed", SPEED)
    async with SimGateway(**options) as gateway:
        yield gateway


@asynccontextmanager
async def running_engine(
    gateway: SimGateway,
    settings: Settings,
    journal: Journal | None = None,
    ready: bool = True,
    no_trace_grace: float = NO_TRACE_GRACE,
) -> AsyncIterator[tuple[Engine, Control]]:
    own_journal = journal is None
    journal = journal or await Journal.open(settings.db_path)
    broker = IBBroker.from_settings(settings, host="127.0.0.1", port=gateway.port,
                                    backoff_initial=0.05)
    engine = Engine(settings, journal, broker, mode="sim", clock_speed=SPEED,
                    no_trace_grace=no_trace_grace)
    await engine.start()
    try:
        if ready:
            await asyncio.wait_for(engine.ready.wait(), 20)
        yield engine, Control(engine)
    finally:
        await engine.stop()
        if own_journal:
            await journal.close()


async def next_event(
    subscription: Subscription,
    kind: type,
    predicate: Callable[[Any], bool] = lambda _: True,
    timeout: float = 20.0,
) -> Any:
    """The next event of `kind` matching `predicate`, or fail after `timeout` seconds."""

    async def find() -> Any:
        while True:
            event = await subscription.get()
            if isinstance(event, kind) and predicate(event):
                return event

    return await asyncio.wait_for(find(), timeout)


# +5 AAPL, -7 MSFT: the positions the kill switch tests close.
TWO_POSITIONS = (("AAPL", Side.BUY, 5), ("MSFT", Side.SELL, 7))


async def open_positions(engine: Engine, legs: Any = TWO_POSITIONS) -> None:
    """Market orders (symbol, side, quantity) through the engine's order manager, filled and
    shown in the broker's positions."""
    for symbol, side, quantity in legs:
        order = await engine.orders.submit(symbol, side, quantity, "test position")
        assert await engine.orders.wait_done([order.order_ref], 10), order
        assert order.status is OrderStatus.FILLED, order
    await engine.wait_positions_settled(5)


def record_orders(gateway: SimGateway) -> list[str]:
    """The orderRef of every placeOrder the gateway receives from now on, held or not."""
    received: list[str] = []
    gateway.hooks.order_received.connect(lambda r: received.append(r.request.order_ref))
    return received


async def lose_ib(gateway: SimGateway, events: Subscription) -> None:
    """IB's servers go away (1100) until `gateway.restore_connectivity()`."""
    gateway.connectivity_lost(3600)
    await next_event(events, ConnectionEvent, lambda e: e.state is ConnectionState.DEGRADED)


@pytest.fixture
async def gateway() -> AsyncIterator[SimGateway]:
    async with sim_gateway() as gw:
        yield gw


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    """A fresh journal (for unit tests on real parts; end-to-end tests open their own)."""
    opened = await Journal.open(tmp_path / "j.sqlite3")
    yield opened
    await opened.close()


@pytest.fixture
async def writer(journal: Journal) -> AsyncIterator[JournalWriter]:
    started = JournalWriter(journal.path)
    await started.start()
    yield started
    await started.stop()


@pytest.fixture
def recorder(writer: JournalWriter) -> Recorder:
    return Recorder(writer, EventBus(), BrokerClock())


async def signal(engine: Engine, symbol: str, target: float) -> str | None:
    """The strategy's signal for `symbol` (a target position), decided and sent as the trader
    does, once the symbol has a fresh price; the filled order's ref, or None when refused."""
    await asyncio.wait_for(_fresh_price(engine, symbol), 20)
    state = engine.market.symbols[symbol]
    prepared = engine.trader.decide(state, Signal(symbol, engine.clock.now(), target, "test"))
    if prepared is None:
        return None
    order, request = prepared
    engine.trader.send(order, request)
    assert await engine.orders.wait_done([order.order_ref], 10), order
    assert order.status is OrderStatus.FILLED, order
    await engine.wait_positions_settled(5)
    return order.order_ref


async def _fresh_price(engine: Engine, symbol: str) -> None:
    """Until a bar has given `symbol` a price, and not a stale one: on a loaded machine the
    first bars can come after the engine is ready."""
    while (engine.portfolio.last_price.get(symbol) is None  # noqa: ASYNC110
           or engine.is_stale(symbol)):
        await asyncio.sleep(0.05)
