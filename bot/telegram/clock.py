"""How old a command is, by Telegram's clock: when each update arrived, and our clock's skew.

A command's `date` is stamped by Telegram's servers, so comparing it with our own clock makes a
fast VPS clock ignore every command (the kill switch too) and a slow one run stale ones. We
estimate the offset (Telegram minus us) from what Telegram tells us the time is: the date of
each message we send, and the HTTP `Date` header of every answer (the header alone when no
message was sent yet; behind a self-hosted Bot API server it is that server's clock). Both are
whole seconds, so the estimate is the median of recent samples, good to about a second.

Age is measured from when the update was fetched (`stamp`), not when a handler got to it, so
a slow Telegram or a busy loop cannot turn a fresh /flatten into a stale one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from telegram import Update

log = logging.getLogger(__name__)

SKEW_WARNING = 10.0  # seconds; a skew this large is worth a warning
_SAMPLES = 15
_MAX_STAMPS = 10_000
_DATED_METHODS = ("/sendMessage", "/sendPhoto")


class TelegramClock:
    """The offset between Telegram's clock and ours, and when each update was fetched."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self.wall = wall
        self._from_messages: deque[float] = deque(maxlen=_SAMPLES)
        self._from_headers: deque[float] = deque(maxlen=_SAMPLES)
        self._received: dict[int, float] = {}
        self._warned_offset: float | None = None

    @property
    def offset(self) -> float:
        """Telegram's time minus ours, in seconds (0 until Telegram has answered once)."""
        samples = self._from_messages or self._from_headers
        return statistics.median(samples) if samples else 0.0

    def observe(self, server_seconds: float, *, from_message: bool) -> None:
        """Telegram said it was `server_seconds` (whole seconds, truncated) just now."""
        sample = server_seconds + 0.5 - self.wall()
        (self._from_messages if from_message else self._from_headers).append(sample)
        offset = self.offset
        if abs(offset) >= SKEW_WARNING and (
            self._warned_offset is None or abs(offset - self._warned_offset) >= SKEW_WARNING
        ):
            self._warned_offset = offset
            log.warning(
                "this machine's clock is %.0f s %s Telegram's; command ages are corrected for "
                "it, but fix the clock (NTP)",
                abs(offset),
                "behind" if offset > 0 else "ahead of",
            )

    async def on_response(self, response: httpx.Response) -> None:
        """httpx response hook: take a sample from every answer Telegram gives."""
        try:
            if response.status_code == 200 and response.request.url.path.endswith(_DATED_METHODS):
                body: Any = json.loads(await response.aread())
                date = body.get("result", {}).get("date")
                if isinstance(date, int):
                    self.observe(date, from_message=True)
                    return
            header = response.headers.get("date")
            if header:
                self.observe(parsedate_to_datetime(header).timestamp(), from_message=False)
        except (ValueError, TypeError, AttributeError, httpx.HTTPError):
            # A clock sample is a nicety: never let it cost the request.
            log.debug("no clock sample from a Telegram answer", exc_info=True)

    def stamp(self, update_id: int) -> None:
        """Note that update `update_id` was fetched now."""
        if len(self._received) >= _MAX_STAMPS:  # updates the gate never saw
            self._received.clear()
        self._received[update_id] = self.wall()

    def age(self, update_id: int, sent: datetime) -> float:
        """Seconds between Telegram dating a message and our fetching it, by Telegram's clock."""
        received = self._received.pop(update_id, None)
        if received is None:
            received = self.wall()
        return received + self.offset - sent.timestamp()


class StampingQueue(asyncio.Queue):  # type: ignore[type-arg]
    """PTB's update queue, noting when the updater put each update in (fetch time)."""

    def __init__(self, clock: TelegramClock) -> None:
        super().__init__()
        self.clock = clock

    async def put(self, item: object) -> None:
        if isinstance(item, Update):
            self.clock.stamp(item.update_id)
        await super().put(item)
