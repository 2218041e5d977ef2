"""Fixtures: a gateway on a free loopback port with a frozen clock, and connected clients."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from ib_async import IB

from ibsim import SimGateway

# Monday 2024-03-04 10:00 New York: half an hour into a regular session.
START = dt.datetime(2024, 3, 4, 15, 0, tzinfo=dt.UTC)


@pytest.fixture
async def gw() -> AsyncIterator[SimGateway]:
    # Account values go out after every fill (no throttle) so assertions need no waiting.
    async with SimGateway(seed=7, speed=0, start=START, account_value_throttle=0) as gateway:
        yield gateway


async def connect(gateway: SimGateway, client_id: int = 1, **kwargs) -> IB:
    ib = IB()
    await ib.connectAsync(
        "127.0.0.1", gateway.port, clientId=client_id, timeout=5, raiseSyncErrors=True, **kwargs
    )
    return ib


@pytest.fixture
async def ib(gw: SimGateway) -> AsyncIterator[IB]:
    client = await connect(gw)
    yield client
    client.disconnect()


async def settle(*clients: IB) -> None:
    """Round trip through the gateway: it has handled everything sent before, and the client
    has processed everything the gateway sent before its reply."""
    for client in clients:
        await client.reqCurrentTimeAsync()


async def step(gw: SimGateway, ib: IB | list[IB], seconds: float) -> None:
    """Let the gateway see all pending requests, advance the clock, and wait for the stream."""
    clients = ib if isinstance(ib, list) else [ib]
    await settle(*clients)
    await gw.advance(seconds)
    await settle(*clients)
