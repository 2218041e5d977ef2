"""One client connection: handshake, framing, and the client's live subscriptions. What the
connection needs of the server it belongs to is the SessionListener."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from typing import Protocol

from . import messages as msg
from .bars import BarSize, RawBar
from .contracts import ContractSpec
from .decoding import DecodeError, decode_request
from .framing import FrameReader, FramingError, encode_frame
from .requests import StartApi

log = logging.getLogger("ibsim")

MIN_VERSION, MAX_VERSION = 157, 178
# ib_async reads openOrder's `duration` from 159 while TWS sends it from 158: 158 would break.
_NEVER = {158}


def negotiate(client_min: int, client_max: int, cap: int = MAX_VERSION) -> int | None:
    """Highest server version both sides speak, or None."""
    for v in range(min(client_max, cap, MAX_VERSION), MIN_VERSION - 1, -1):
        if v >= client_min and v not in _NEVER:
            return v
    return None


@dataclass(slots=True)
class MktDataSub:
    spec: ContractSpec
    data_type: int
    last_k: int


@dataclass(slots=True)
class RealTimeSub:
    spec: ContractSpec
    what: str
    rth: bool
    last_k: int


@dataclass(slots=True)
class KeepUpSub:
    spec: ContractSpec
    size: BarSize
    what: str
    rth: bool
    format_date: int
    last_k: int
    bar: RawBar | None  # the bar being built (last one sent)
    key: object = None  # which bar ``bar`` is (start time, trade date, week, month)


@dataclass(slots=True)
class ScannerSub:
    """A reqScannerSubscription kept until cancelled: what it ranks, and when it is ranked
    again (simulated time)."""

    scan_code: str
    instrument: str
    location: str
    rows: int
    above_price: float | None
    below_price: float | None
    next_at: float


@dataclass(slots=True)
class Subscriptions:
    mkt_data: dict[int, MktDataSub] = field(default_factory=dict)
    realtime: dict[int, RealTimeSub] = field(default_factory=dict)
    keep_up: dict[int, KeepUpSub] = field(default_factory=dict)
    account_updates: str | None = None
    account_multi: dict[int, str] = field(default_factory=dict)
    account_summary: dict[int, str] = field(default_factory=dict)
    positions: bool = False
    pnl: dict[int, str] = field(default_factory=dict)
    pnl_single: dict[int, tuple[str, int]] = field(default_factory=dict)
    bulletins: bool = False
    scanner: dict[int, ScannerSub] = field(default_factory=dict)

    def con_ids(self) -> set[int]:
        out = {s.spec.con_id for s in self.mkt_data.values()}
        out |= {s.spec.con_id for s in self.realtime.values()}
        out |= {s.spec.con_id for s in self.keep_up.values()}
        return out

    def clear_market_data(self) -> None:
        self.mkt_data.clear()
        self.realtime.clear()
        self.keep_up.clear()


class SessionListener(Protocol):
    """The server a connection belongs to."""

    def session_opened(self, session: ClientSession) -> bool:
        """A socket was accepted; False refuses it (it is aborted at once)."""

    def server_time(self) -> float:
        """Simulated time for the handshake."""

    def client_in_use(self, client_id: int) -> bool: ...

    def session_ready(self, session: ClientSession) -> None:
        """startApi was accepted: the session has its clientId."""

    def session_closed(self, session: ClientSession) -> None: ...

    def request(self, session: ClientSession, req: object) -> None:
        """A decoded request from a ready session."""


class ClientSession(asyncio.Protocol):
    """The server end of one API socket."""

    def __init__(self, listener: SessionListener, max_server_version: int = MAX_VERSION) -> None:
        self.listener = listener
        self.max_server_version = max_server_version
        self.reader = FrameReader()
        self.transport: asyncio.Transport | None = None
        self.version = 0
        self.client_id: int | None = None
        self.ready = False
        self.peer = ""
        self.subs = Subscriptions()
        self.market_data_type = 1
        # permIds this connection has been sent an openOrder for: ib_async drops (and logs
        # "No order found" for) an orderStatus about an order it has not seen.
        self.known_orders: set[int] = set()
        # Output held back until the state file has what it tells (see `hold`).
        self._held: list[bytes] | None = None

    # --- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        if not self.listener.session_opened(self):
            transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.listener.session_closed(self)

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.reader.feed(data)
        except FramingError as exc:
            log.warning("client %s: %s; closing", self.peer, exc)
            self.close()
            return
        for fields in frames:
            if self.transport is None or self.transport.is_closing():
                return
            if not self.version:
                self._handshake(fields)
            elif not self.ready:
                self._start_api(fields)
            else:
                self._request(fields)

    # --- connection phases ---------------------------------------------------------------------

    def _handshake(self, fields: list[str]) -> None:
        text = fields[0] if fields else ""
        m = re.fullmatch(r"v(\d+)(?:\.\.(\d+))?(?: .*)?", text)
        lo, hi = (int(m.group(1)), int(m.group(2) or m.group(1))) if m else (0, 0)
        version = negotiate(lo, hi, self.max_server_version) if m else None
        if version is None:
            message = (
                f"Unsupported API version range {text!r}: ibsim speaks server versions "
                f"{MIN_VERSION}..{MAX_VERSION} (never 158)"
            )
            log.warning("client %s: %s", self.peer, message)
            self.write(msg.error(-1, 530, message, 0))
            self.close()
            return
        self.version = version
        assert self.transport is not None
        self.transport.write(encode_frame(msg.handshake(version, self.listener.server_time())))

    def _start_api(self, fields: list[str]) -> None:
        try:
            req = decode_request(fields, self.version)
        except DecodeError as exc:
            self.send_error(-1, 320, f"Error reading request: {exc}")
            return
        if not isinstance(req, StartApi):
            self.send_error(-1, 321, "Error validating request: startApi expected first")
            return
        if self.listener.client_in_use(req.client_id):
            log.warning("client %s: clientId %d already in use", self.peer, req.client_id)
            self.send_error(
                -1,
                326,
                "Unable to connect as the client id is already in use. "
                "Retry with a unique client id.",
            )
            self.close()
            return
        self.client_id = req.client_id
        self.ready = True
        self.listener.session_ready(self)

    def _request(self, fields: list[str]) -> None:
        try:
            req = decode_request(fields, self.version)
        except DecodeError as exc:
            name = fields[0] if fields else "?"
            self.send_error(-1, 320, f"Error reading request {name}: {exc}")
            return
        self.listener.request(self, req)

    # --- output --------------------------------------------------------------------------------

    def write(self, fields: list[str]) -> None:
        self._send(encode_frame(fields))

    def write_many(self, messages: list[list[str]]) -> None:
        if messages:
            self._send(b"".join(encode_frame(f) for f in messages))

    def hold(self) -> None:
        """Keep what is written from now on until `release`, in order (an order change is
        on disk before the client hears of it, and nothing written after it overtakes it)."""
        if self._held is None:
            self._held = []

    def release(self) -> None:
        held, self._held = self._held, None
        if held:
            self._send(b"".join(held))

    def _send(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if self._held is not None:
            self._held.append(data)
        else:
            self.transport.write(data)

    def send_error(self, req_id: int, code: int, message: str) -> None:
        self.write(msg.error(req_id, code, message, self.version))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
