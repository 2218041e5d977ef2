"""Fixtures: a gateway on a free loopback port with a frozen clock, and connected clients; a
standalone simulator process and its control channel."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Self

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


async def command(port: int, **command: object) -> dict:
    """One control-channel command and its reply."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(json.dumps(command).encode() + b"\n")
        return json.loads(await asyncio.wait_for(reader.readline(), 5))
    finally:
        writer.close()


class Simulator:
    """A standalone ibsim process (`python -m ibsim.cli`) and its ports."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int, control: int) -> None:
        self.proc = proc
        self.port = port
        self.control = control

    @classmethod
    async def launch(cls, *options: str) -> Self:
        """Start it with `options` (and a control port) and wait for its ready line; a
        process that never says it is ready is killed."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ibsim.cli", "--control-port", "0", *options,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
            assert line.startswith("ibsim ready"), line
        except BaseException:
            proc.kill()
            await proc.wait()
            raise
        fields = dict(part.split("=") for part in line.split()[2:])
        return cls(proc, int(fields["port"]), int(fields["control_port"]))

    async def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL: nothing more is saved."""
        if self.proc.returncode is None:
            self.proc.kill()
        await asyncio.wait_for(self.proc.wait(), timeout)


@asynccontextmanager
async def simulator(*options: str) -> AsyncIterator[Simulator]:
    sim = await Simulator.launch(
        "--port", "0", "--seed", "3", "--symbols", "AAPL", "--log-level", "warning", *options
    )
    try:
        yield sim
    finally:
        await sim.kill(timeout=20)


async def client(port: int, client_id: int = 1) -> IB:
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=client_id, timeout=5, raiseSyncErrors=True)
    return ib
