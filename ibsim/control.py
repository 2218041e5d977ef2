"""Control channel: one-line JSON commands on a loopback TCP port, for faults and the clock
of a standalone simulator. Protocol in ibsim/README.md."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from typing import Any, Protocol

from .bulletins import Bulletin
from .clock import SimClock
from .faults import FaultInjector
from .orders import Execution, SimOrder

log = logging.getLogger("ibsim")


class Controlled(Protocol):
    """The gateway as the control channel sees it."""

    @property
    def port(self) -> int: ...
    @property
    def faults(self) -> FaultInjector: ...
    @property
    def clock(self) -> SimClock: ...
    @property
    def now(self) -> dt.datetime: ...
    @property
    def clients(self) -> list[int]: ...
    @property
    def account_names(self) -> list[str]: ...
    @property
    def open_orders(self) -> list[SimOrder]: ...
    @property
    def executions(self) -> list[Execution]: ...
    async def advance(self, seconds: float) -> None: ...
    def set_speed(self, speed: float) -> None: ...
    def bulletin(self, message: str, exchange: str = "", msg_type: int = 1) -> Bulletin: ...


def _status(gw: Controlled) -> dict[str, Any]:
    faults = gw.faults.state.faults
    return {
        "port": gw.port,
        "clients": gw.clients,
        "time": gw.now.isoformat(),
        "speed": gw.clock.speed,
        "accounts": gw.account_names,
        "open_orders": len(gw.open_orders),
        "executions": len(gw.executions),
        "port_open": gw.faults.port_open,
        "down_until": (
            None if faults.down_until is None
            else dt.datetime.fromtimestamp(faults.down_until, dt.UTC).isoformat()
        ),
    }


async def _advance(gw: Controlled, seconds: float) -> None:
    await gw.advance(seconds)
    await gw.faults.port_settled()  # a downtime the jump ended is over when this answers


def _bulletin(gw: Controlled, message: str, exchange: str = "", msg_type: int = 1) -> int:
    return gw.bulletin(message, exchange, msg_type).msg_id


# command -> (callable, allowed argument names)
_COMMANDS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "status": (_status, ()),
    "drop_connections": (lambda gw: gw.faults.drop_connections(), ()),
    "refuse_connections": (lambda gw, seconds: gw.faults.refuse_connections(seconds), ("seconds",)),
    "connectivity_lost": (
        lambda gw, seconds, data_maintained=True: gw.faults.connectivity_lost(
            seconds, data_maintained
        ),
        ("seconds", "data_maintained"),
    ),
    "restore_connectivity": (lambda gw: gw.faults.restore_connectivity(), ()),
    "data_farm_flap": (
        lambda gw, seconds=1.0, farm="usfarm": gw.faults.data_farm_flap(seconds, farm),
        ("seconds", "farm"),
    ),
    "reject_next_order": (
        lambda gw, reason="Simulated rejection by ibsim": gw.faults.reject_next_order(reason),
        ("reason",),
    ),
    "pacing_violation_next": (lambda gw: gw.faults.pacing_violation_next(), ()),
    "delay_order_acks": (lambda gw, ms: gw.faults.delay_order_acks(ms), ("ms",)),
    "stall_market_data": (
        lambda gw, symbol, seconds=None: gw.faults.stall_market_data(symbol, seconds),
        ("symbol", "seconds"),
    ),
    "resume_market_data": (lambda gw, symbol: gw.faults.resume_market_data(symbol), ("symbol",)),
    "competing_session": (
        lambda gw, seconds=1.0: gw.faults.competing_session(seconds),
        ("seconds",),
    ),
    "restart_gateway": (
        lambda gw, minutes=3.0: gw.faults.restart_gateway(minutes),
        ("minutes",),
    ),
    "outage": (lambda gw, hours=2.0: gw.faults.outage(hours), ("hours",)),
    "end_outage": (lambda gw: gw.faults.end_outage(), ()),
    "advance": (_advance, ("seconds",)),
    "set_speed": (lambda gw, speed: gw.set_speed(speed), ("speed",)),
    "bulletin": (_bulletin, ("message", "exchange", "msg_type")),
}


class ControlServer:
    def __init__(self, gw: Controlled) -> None:
        self.gw = gw
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._client, host, port)
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                reply = await self.execute(line)
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def execute(self, line: bytes) -> dict[str, Any]:
        try:
            command = json.loads(line)
            if not isinstance(command, dict):
                raise ValueError("a command is a JSON object")
            name = command.pop("cmd", None)
            if name not in _COMMANDS:
                raise ValueError(f"unknown command {name!r}; known: {sorted(_COMMANDS)}")
            fn, allowed = _COMMANDS[name]
            unknown = set(command) - set(allowed)
            if unknown:
                raise ValueError(f"{name}: unexpected arguments {sorted(unknown)}")
            log.info("control: %s %s", name, command or "")
            result = fn(self.gw, **command)
            if asyncio.iscoroutine(result):
                result = await result
            return {"ok": True, "result": result}
        except (ValueError, TypeError, KeyError) as exc:
            return {"ok": False, "error": str(exc)}
