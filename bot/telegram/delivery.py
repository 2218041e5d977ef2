"""The Telegram sender: one task sends what the alert outbox holds; command replies go at once.

The sender sends messages one at a time (through PTB's AIORateLimiter), waits out 429s, backs
off on network errors, and tells the outbox (`bot.telegram.outbox`) when Telegram accepted a
message or refused it for good. Permanent refusals (403: the user blocked the bot; 400) are
journaled, not retried; anything else (5xx, timeouts, even an answer PTB cannot read) is retried
with backoff. A reply to a command is sent directly; if Telegram fails, the rest goes through
the outbox. The engine never waits for any of this.

A chat Telegram moved to a new id (a group upgraded to a supergroup: ChatMigrated) is reported
to `on_migrated`; once the front-end follows the move (`move_chat`), queued and later alerts
and replies for the old id go to the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta, tzinfo

from telegram import Bot, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.warnings import PTBDeprecationWarning

from bot.alerts import Alert
from bot.messages.document import Doc, to_html
from bot.tasks import KeptAlive
from bot.telegram.outbox import AlertQueue, Envelope, OutgoingMessage
from bot.telegram.ports import Outbox

log = logging.getLogger(__name__)


def retry_after_seconds(error: RetryAfter) -> float:
    """`RetryAfter.retry_after` in seconds, whether PTB returns an int or a timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class AlertDelivery:
    """The alert outbox and its sender. Call `attach(bot)` once the bot is initialized."""

    def __init__(
        self,
        outbox: Outbox,
        chat_ids: Iterable[int],
        mode: Callable[[], str],
        display_tz: tzinfo = UTC,
        bound: int = 1000,
        initial_backoff: float = 0.5,
        max_backoff: float = 30.0,
        delayed_after: float = 60.0,
    ) -> None:
        self.queue = AlertQueue(outbox, chat_ids, mode, display_tz, bound, delayed_after)
        self.mode = mode
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self._bot: Bot | None = None
        self._attached = asyncio.Event()
        self._sender = KeptAlive("telegram:delivery", self._run, initial_backoff)
        # Called with (old, new) when Telegram answers that a chat moved; it may follow the
        # move by calling `move_chat`.
        self.on_migrated: Callable[[int, int], Awaitable[object]] | None = None
        self.last_delivered: datetime | None = None
        self.delivered = 0  # alert parts Telegram accepted
        self.failed = 0  # alert parts refused for good
        self.retries = 0

    # --- the outbox, as the front-end sees it ------------------------------------------------

    async def submit(self, alert: Alert) -> None:
        """Persist and queue an alert for every chat; never awaits Telegram."""
        await self.queue.submit(alert)

    async def send_doc(self, chat_id: int, doc: Doc, kind: str = "reply") -> None:
        """Reliably deliver a doc to one chat (e.g. a flatten report whose edit failed)."""
        await self.queue.send_doc(chat_id, doc, kind)

    def move_chat(self, old: int, new: int) -> None:
        """From now on, what is meant for `old` goes to `new`, including what is queued."""
        self.queue.move_chat(old, new)

    async def restore(self) -> int:
        """Queue alerts left in the outbox by a previous run; returns how many."""
        return await self.queue.restore()

    @property
    def chat_ids(self) -> tuple[int, ...]:
        return self.queue.chat_ids

    @property
    def pending(self) -> int:
        return self.queue.pending

    @property
    def dropped(self) -> int:
        return self.queue.dropped

    @property
    def dropped_total(self) -> int:
        return self.queue.dropped_total

    # --- replies to commands -----------------------------------------------------------------

    async def reply(self, chat_id: int, doc: Doc) -> None:
        """Answer a command at once; if Telegram fails, the rest goes through the queue."""
        assert self._bot is not None, "reply() before attach()"
        parts = to_html(doc, self.mode())
        index = 0
        while index < len(parts):
            chat_id = self.queue.route(chat_id)
            try:
                await self._bot.send_message(
                    chat_id,
                    parts[index],
                    parse_mode=ParseMode.HTML,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
            except ChatMigrated as exc:
                if await self._migrated(chat_id, exc.new_chat_id):
                    continue  # the same part, to the chat's new id
                log.warning("reply to chat %d refused: it moved to %d", chat_id, exc.new_chat_id)
                return
            except (Forbidden, BadRequest) as exc:
                log.warning("reply to chat %d refused: %s", chat_id, exc.message)
                return
            except TelegramError as exc:
                log.warning("reply to chat %d failed (%s); queued for retry", chat_id, exc.message)
                for rest in parts[index:]:
                    await self.queue.enqueue(
                        Envelope(chat_id, rest, "", "reply", False, datetime.now(UTC))
                    )
                return
            index += 1

    async def _migrated(self, old: int, new: int) -> bool:
        """Telegram says `old` moved to `new`: report it; True if the move is followed."""
        if self.on_migrated is not None:
            try:
                await self.on_migrated(old, new)
            except Exception:  # following failed: the message is given up, not the sender
                log.exception("following chat %d to %d failed", old, new)
        return self.queue.route(old) == new

    # --- the sender task -----------------------------------------------------------------

    def attach(self, bot: Bot) -> None:
        self._bot = bot
        self._attached.set()

    @property
    def sender_restarts(self) -> int:
        return self._sender.restarts

    async def start(self) -> None:
        self._sender.start()

    async def stop(self, drain_timeout: float = 2.0) -> None:
        """Give queued alerts a moment to go out; the rest stay in the outbox for next time."""
        if self._attached.is_set() and self._sender.running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.queue.wait_idle(), drain_timeout)
        await self._sender.stop()

    async def wait_idle(self) -> None:
        """Until everything queued so far was delivered or given up (for tests and shutdown)."""
        await self.queue.wait_idle()

    async def _run(self) -> None:
        """The sender. If it dies anyway, `KeptAlive` restarts it; what it had taken from the
        queue is still in the outbox and goes out on the next start."""
        await self._attached.wait()
        while True:
            await self.queue.wait_for_work()
            for message in self.queue.take():
                await self._deliver(message)
            for message in self.queue.take_dropped_notice():
                await self._deliver(message)

    async def _deliver(self, message: OutgoingMessage) -> None:
        assert self._bot is not None
        backoff = self.initial_backoff
        as_plain = False
        while True:
            message.chat_id = self.queue.route(message.chat_id)
            try:
                if as_plain:
                    await self._bot.send_message(
                        message.chat_id, message.plain, disable_notification=message.silent
                    )
                else:
                    await self._bot.send_message(
                        message.chat_id,
                        message.html,
                        parse_mode=ParseMode.HTML,
                        disable_notification=message.silent,
                        link_preview_options=LinkPreviewOptions(is_disabled=True),
                    )
            except RetryAfter as exc:
                self.retries += 1
                await asyncio.sleep(retry_after_seconds(exc))
                continue
            except Forbidden as exc:
                await self._give_up(message, f"Telegram refused it (403: {exc.message})")
                return
            except ChatMigrated as exc:
                if await self._migrated(message.chat_id, exc.new_chat_id):
                    continue  # to the new id
                await self._give_up(message, f"the chat moved to id {exc.new_chat_id}")
                return
            except BadRequest as exc:
                if not as_plain and message.plain and "parse" in exc.message.lower():
                    as_plain = True  # our HTML was refused; the words still matter
                    continue
                await self._give_up(message, f"Telegram refused it (400: {exc.message})")
                return
            except (InvalidToken, NetworkError) as exc:
                # 5xx, timeouts, connection refused, a revoked token: keep trying; the
                # alerts are safe in the outbox meanwhile.
                self.retries += 1
                log.warning(
                    "alert delivery failed (%s); retrying in %.1f s", type(exc).__name__, backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            except TelegramError as exc:
                await self._give_up(message, f"Telegram error: {exc.message}")
                return
            except Exception as exc:  # e.g. a 200 with ok=false (PTB: KeyError): retry
                self.retries += 1
                log.warning(
                    "alert delivery failed unexpectedly (%s); retrying in %.1f s",
                    type(exc).__name__,
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            self.delivered += len(message.envelopes)
            self.last_delivered = datetime.now(UTC)
            await self.queue.sent(message)
            return

    async def _give_up(self, message: OutgoingMessage, reason: str) -> None:
        self.failed += len(message.envelopes)
        text = f"alert to chat {message.chat_id} not delivered: {reason}"
        log.error("%s", text)
        await self.queue.given_up(message, text)
