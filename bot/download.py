"""`tradebot download`: historical bars from the gateway into the journal's bars table, paced.

The period is fetched newest first in chunks no longer than IB serves in one request for the
bar size, each request paced by `HistoricalPacer`; bars already stored are kept, so downloading
again only adds what is new. The backtester reads them as DATA `journal:SYMBOL`.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.broker import IBBroker
from engine.config import Settings
from engine.domain import Instrument
from engine.errors import ConfigurationError
from engine.history_pacing import HistoricalPacer
from engine.journal import Journal
from engine.ports import BrokerRequestError

DAY = 86_400
# IB's bar sizes (barSizeSetting), in seconds; a month as 30 days only for chunking.
BAR_SIZES: dict[str, int] = {
    "1 secs": 1, "5 secs": 5, "10 secs": 10, "15 secs": 15, "30 secs": 30,
    "1 min": 60, "2 mins": 120, "3 mins": 180, "5 mins": 300, "10 mins": 600,
    "15 mins": 900, "20 mins": 1200, "30 mins": 1800, "1 hour": 3600, "2 hours": 7200,
    "3 hours": 10800, "4 hours": 14400, "8 hours": 28800, "1 day": DAY, "1 week": 7 * DAY,
    "1 month": 30 * DAY,
}  # fmt: skip
_DURATION_SECONDS = {"S": 1, "D": DAY, "W": 7 * DAY, "M": 30 * DAY, "Y": 365 * DAY}
# The longest durations IB serves in one request for bars up to this many seconds
# (IB's "valid duration and bar size settings"); durations in seconds.
_CHUNKS = ((1, 1800), (5, 3600), (15, 14_400), (30, 28_800), (120, DAY), (1200, 7 * DAY),
           (28_800, 30 * DAY), (30 * DAY, 365 * DAY))  # fmt: skip
# IB counts the 60-in-10-minutes rule for bars of 30 seconds or less only.
_SMALL_BAR_SECONDS = 30
MAX_REQUESTS = 10_000
# After IB's own pacing error (another program on the account asked too): wait, doubling, and
# give up past the longest wait.
PACING_BACKOFF, MAX_PACING_BACKOFF = 60.0, 600.0


@dataclass(frozen=True)
class DownloadRequest:
    symbol: str
    bar_size: str  # IB's spelling: "1 min", "5 mins"
    duration: str  # as given, normalised: "30 D"
    seconds: int  # the duration's length


def parse_request(symbol: str, bar_size: str, duration: str) -> DownloadRequest:
    """The download asked for, or ValueError with one line naming the bad argument."""
    symbol = symbol.strip().upper()
    if not re.fullmatch(r"[A-Z0-9][A-Z0-9.\-]*", symbol):
        raise ValueError(f"SYMBOL: expected a ticker like AAPL, got {symbol!r}")
    size = _bar_size(bar_size)
    match = re.fullmatch(r"\s*(\d+)\s*([SDWMY])\s*", duration.upper())
    if not match or int(match.group(1)) == 0:
        raise ValueError(
            f"--duration: expected a whole number and a unit S, D, W, M or Y (like 30 D), "
            f"got {duration!r}"
        )
    count, unit = int(match.group(1)), match.group(2)
    seconds = count * _DURATION_SECONDS[unit]
    if math.ceil(seconds / chunk_seconds(size)) > MAX_REQUESTS:
        raise ValueError(
            f"--duration: {count} {unit} of {size} bars takes more than {MAX_REQUESTS:,} "
            "requests; choose a larger bar size or a shorter duration"
        )
    return DownloadRequest(symbol, size, f"{count} {unit}", seconds)


def _bar_size(text: str) -> str:
    """IB's spelling of a bar size: "1min", "5 min", "1 hours" → "1 min", "5 mins", "1 hour"."""
    match = re.fullmatch(r"\s*(\d+)\s*([a-z]+?)s?\s*", text.lower())
    if match:
        count, unit = int(match.group(1)), {"sec": "sec", "min": "min", "hour": "hour",
                                             "day": "day", "week": "week", "month": "month",
                                             }.get(match.group(2), "")  # fmt: skip
        plural = "s" if count > 1 or unit == "sec" else ""
        name = f"{count} {unit}{plural}"
        if unit and name in BAR_SIZES:
            return name
    raise ValueError(f"--bar-size: unknown bar size {text!r} (one of: {', '.join(BAR_SIZES)})")


def chunk_seconds(bar_size: str) -> int:
    """The longest duration, in seconds, one request for `bar_size` bars may ask for."""
    seconds = BAR_SIZES[bar_size]
    return next(chunk for largest, chunk in _CHUNKS if seconds <= largest)


def plan(request: DownloadRequest, end: datetime) -> list[tuple[datetime, str]]:
    """The requests, newest first: (end, IB duration) covering `request.seconds` before `end`."""
    size = chunk_seconds(request.bar_size)
    chunks: list[tuple[datetime, str]] = []
    remaining = request.seconds
    while remaining > 0:
        span = min(size, remaining)
        # Up to a day in seconds: exactly the span, whereas IB's "1 D" is a trading session
        # and depends on where `end` falls. IB takes at most 86400 S; longer spans go in days
        # (sessions: at least as long, so chunks overlap rather than leave a gap).
        text = f"{span} S" if span <= DAY else f"{math.ceil(span / DAY)} D"
        chunks.append((end, text))
        end -= timedelta(seconds=span)
        remaining -= span
    return chunks


@dataclass(frozen=True)
class DownloadResult:
    requests: int
    received: int
    added: int
    first: datetime | None
    last: datetime | None


async def download(
    settings: Settings,
    request: DownloadRequest,
    *,
    client_id: int | None = None,
    pacer: HistoricalPacer | None = None,
    progress: Callable[[str], None] = lambda line: None,
    pacing_backoff: float = PACING_BACKOFF,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> DownloadResult:
    """Fetch `request` from the gateway the settings name (the built-in simulated one when
    IB_HOST is empty) into the journal at DB_PATH. Raises ConfigurationError for what the user
    must fix (a symbol IB does not know, a gateway not there), one line."""
    use_rth = not settings.outside_rth
    if pacer is None:
        small = BAR_SIZES[request.bar_size] <= _SMALL_BAR_SECONDS
        pacer = HistoricalPacer(window_limit=None if not small else 60)
    async with AsyncExitStack() as stack:
        journal = await Journal.open(settings.db_path)
        stack.push_async_callback(journal.close)
        host, port = settings.ib_host or "127.0.0.1", settings.ib_port
        if settings.simulated:
            from ibsim import SimGateway

            gateway = await stack.enter_async_context(
                SimGateway(seed=settings.sim_seed, speed=settings.sim_speed,
                           symbols=[request.symbol])
            )  # fmt: skip
            port = gateway.port
        broker = IBBroker(host, port, client_id or settings.ib_client_id)
        try:
            await broker.connect_once()
        except (OSError, TimeoutError, ConnectionError) as exc:
            raise ConfigurationError(
                f"cannot connect to the gateway at {host}:{port} with client id "
                f"{broker.client_id} ({exc or type(exc).__name__}); is it running? "
                "(another program on that client id: pass --client-id)"
            ) from None
        stack.callback(broker.stop)
        if await broker.qualify((_instrument(settings, request.symbol),)):
            raise ConfigurationError(f"the gateway does not know {request.symbol}")
        end = await broker.current_time()
        chunks = plan(request, end)
        received = added = 0
        first = last = None
        for number, (chunk_end, duration) in enumerate(chunks, 1):
            identity = (request.symbol, chunk_end, duration, request.bar_size, use_rth)
            backoff = pacing_backoff
            while True:
                await pacer.wait(request.symbol, identity)
                try:
                    bars = await broker.history_window(
                        request.symbol, request.bar_size, duration, chunk_end, use_rth
                    )
                    break
                except BrokerRequestError as exc:
                    if not _pacing_violation(exc) or backoff > MAX_PACING_BACKOFF:
                        raise ConfigurationError(
                            f"IB refused the request for {request.symbol} ({exc}); "
                            f"{added} new bars were stored before it"
                        ) from None
                # IB_NOTES: on a pacing violation back off minutes, not seconds.
                progress(f"IB says pacing violation: waiting {backoff:.0f} s")
                await sleep(backoff)
                backoff *= 2
            received += len(bars)
            added += await journal.add_bars(request.bar_size, bars)
            if bars:
                first = min(first or bars[0].time, bars[0].time)
                last = max(last or bars[-1].time, bars[-1].time)
            progress(f"{number}/{len(chunks)}: {len(bars)} bars ending {chunk_end:%Y-%m-%d %H:%M}")
    return DownloadResult(len(chunks), received, added, first, last)


def _pacing_violation(exc: BrokerRequestError) -> bool:
    return exc.code == 162 and "pacing" in str(exc).lower()


def _instrument(settings: Settings, symbol: str) -> Instrument:
    """The symbol as SYMBOLS configures it (exchange, currency, type), or a US stock."""
    return next((i for i in settings.symbols if i.symbol == symbol), Instrument(symbol))
