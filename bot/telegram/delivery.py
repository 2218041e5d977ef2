"""Alert delivery: a bounded queue drained by one sender task; the engine never waits for Telegram.

`submit` writes the alert to the journal's outbox and queues it; it never awaits Telegram. The
sender task sends messages one at a time (through PTB's AIORateLimiter), waits out 429s, backs
off on network errors, merges a backlog into fewer messages, and marks each alert done in the
outbox once Telegram accepted it. Alerts still in the outbox after a crash are sent on the next
start. Permanent refusals (403: the user blocked the bot; 400) are journaled, not retried;
anything else (5xx, timeouts, even an answer PTB cannot read) is retried with backoff.

A chat Telegram moved to a new id (a group upgraded to a supergroup: ChatMigrated) is reported
to `on_migrated`; once the front-end follows the move (`move_chat`), queued and later alerts
and replies for the old id go to the new one.

Flatten reports and security alerts never wait behind the bounded queue: they are always
written to the outbox and go in a priority lane sent first; only routine alerts are dropped
(counted and told) when the queue is full.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import warnings
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
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
from bot.messages.document import (
    TELEGRAM_LIMIT,
    Doc,
    delayed_note,
    telegram_length,
    to_html,
    to_plain,
)
from bot.messages.events import dropped_doc
from bot.tasks import KeptAlive
from bot.telegram.ports import Outbox

log = logging.getLogger(__name__)

CHANNEL = "telegram"
_BATCH = 50  # queued messages merged per round when Telegram falls behind
PRIORITY_KINDS = frozenset({"report", "security"})  # never dropped, sent first


@dataclass(slots=True)
class Envelope:
    """One message part for one chat, as stored in the outbox."""

    chat_id: int
    html: str
    plain: str
    kind: str
    silent: bool
    created: datetime
    outbox_id: int | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "chat_id": self.chat_id,
                "html": self.html,
                "plain": self.plain,
                "kind": self.kind,
                "silent": self.silent,
                "created": self.created.isoformat(),
            }
        )

    @classmethod
    def from_json(cls, outbox_id: int, payload: str) -> Envelope:
        data = json.loads(payload)
        return cls(
            chat_id=int(data["chat_id"]),
            html=str(data["html"]),
            plain=str(data.get("plain", "")),
            kind=str(data.get("kind", "")),
            silent=bool(data.get("silent", False)),
            created=datetime.fromisoformat(data["created"]),
            outbox_id=outbox_id,
        )


@dataclass(slots=True)
class _Message:
    """What one sendMessage carries: one or more envelopes for the same chat."""

    chat_id: int
    html: str
    plain: str
    silent: bool
    envelopes: list[Envelope] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(UTC)


def retry_after_seconds(error: RetryAfter) -> float:
    """`RetryAfter.retry_after` in seconds, whether PTB returns an int or a timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class AlertDelivery:
    """The sender side of alerts. Call `attach(bot)` once the bot is initialized."""

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
        self.outbox = outbox
        self.chat_ids = tuple(sorted(set(chat_ids)))
        self.mode = mode
        self.tz = display_tz
        self.bound = bound
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.delayed_after = delayed_after
        self._queue: deque[Envelope] = deque()  # routine alerts, at most `bound`
        self._priority: deque[Envelope] = deque()  # reports and security alerts
        self._queued = asyncio.Event()
        self._bot: Bot | None = None
        self._attached = asyncio.Event()
        self._sender = KeptAlive("telegram:delivery", self._run, initial_backoff)
        self._dropped: Counter[str] = Counter()
        self._moved: dict[int, int] = {}  # chat id → the id Telegram moved it to
        # Called with (old, new) when Telegram answers that a chat moved; it may follow the
        # move by calling `move_chat`.
        self.on_migrated: Callable[[int, int], Awaitable[object]] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.last_delivered: datetime | None = None
        self.delivered = 0  # alert parts Telegram accepted
        self.failed = 0  # alert parts refused for good
        self.retries = 0
        self.dropped_total = 0  # alert parts dropped because the queue was full

    # --- producer side: never awaits Telegram --------------------------------------------

    async def submit(self, alert: Alert) -> None:
        """Persist and queue an alert for every chat; drops (and counts) when the queue is full."""
        parts = to_html(alert.doc, self.mode())
        plain = to_plain(alert.doc, self.mode())[:TELEGRAM_LIMIT]
        for chat_id in self.chat_ids:
            for part in parts:
                await self._enqueue(
                    Envelope(
                        chat_id,
                        part,
                        plain if len(parts) == 1 else "",
                        alert.kind,
                        alert.silent,
                        alert.time,
                    )
                )

    async def send_doc(self, chat_id: int, doc: Doc, kind: str = "reply") -> None:
        """Reliably deliver a doc to one chat (e.g. a flatten report whose edit failed)."""
        for part in to_html(doc, self.mode()):
            await self._enqueue(Envelope(self._route(chat_id), part, "", kind, False, _now()))

    async def reply(self, chat_id: int, doc: Doc) -> None:
        """Answer a command at once; if Telegram fails, the rest goes through the queue."""
        assert self._bot is not None, "reply() before attach()"
        parts = to_html(doc, self.mode())
        index = 0
        while index < len(parts):
            chat_id = self._route(chat_id)
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
                    await self._enqueue(Envelope(chat_id, rest, "", "reply", False, _now()))
                return
            index += 1

    # --- chats that moved --------------------------------------------------------------------

    def move_chat(self, old: int, new: int) -> None:
        """From now on, what is meant for `old` goes to `new`, including what is queued."""
        self._moved[old] = new
        self.chat_ids = tuple(sorted({self._route(chat_id) for chat_id in self.chat_ids}))
        for lane in (self._priority, self._queue):
            for envelope in lane:
                envelope.chat_id = self._route(envelope.chat_id)

    def _route(self, chat_id: int) -> int:
        seen = {chat_id}
        while chat_id in self._moved and self._moved[chat_id] not in seen:
            chat_id = self._moved[chat_id]
            seen.add(chat_id)
        return chat_id

    async def _migrated(self, old: int, new: int) -> bool:
        """Telegram says `old` moved to `new`: report it; True if the move is followed."""
        if self.on_migrated is not None:
            try:
                await self.on_migrated(old, new)
            except Exception:  # following failed: the message is given up, not the sender
                log.exception("following chat %d to %d failed", old, new)
        return self._route(old) == new

    async def _enqueue(self, envelope: Envelope) -> None:
        priority = envelope.kind in PRIORITY_KINDS
        if not priority and self._full():
            self._count_dropped(envelope)
            return
        try:
            envelope.outbox_id = await self.outbox.outbox_add(CHANNEL, envelope.to_json())
        except Exception:  # the journal failing must not cost the alert
            log.exception("could not write an alert to the outbox; sending it anyway")
        if not priority and self._full():  # filled up while the outbox was written
            self._count_dropped(envelope)
            await self._done(envelope)
            return
        self._put(envelope)

    def _full(self) -> bool:
        return len(self._queue) >= self.bound

    def _put(self, envelope: Envelope) -> None:
        (self._priority if envelope.kind in PRIORITY_KINDS else self._queue).append(envelope)
        self._idle.clear()
        self._queued.set()

    def _count_dropped(self, envelope: Envelope) -> None:
        self._dropped[envelope.kind] += 1
        self.dropped_total += 1

    async def restore(self) -> int:
        """Queue alerts left in the outbox by a previous run; returns how many."""
        restored = 0
        for outbox_id, payload in await self.outbox.outbox_pending(CHANNEL, self.bound):
            try:
                envelope = Envelope.from_json(outbox_id, payload)
            except (ValueError, KeyError, TypeError):
                log.warning("outbox entry %d is unreadable; dropping it", outbox_id)
                await self.outbox.outbox_done(outbox_id)
                continue
            envelope.chat_id = self._route(envelope.chat_id)
            if envelope.chat_id not in self.chat_ids or (
                envelope.kind not in PRIORITY_KINDS and self._full()
            ):
                await self.outbox.outbox_done(outbox_id)
                continue
            self._put(envelope)
            restored += 1
        return restored

    @property
    def pending(self) -> int:
        return len(self._queue) + len(self._priority)

    @property
    def dropped(self) -> int:
        return sum(self._dropped.values())

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
                await asyncio.wait_for(self._idle.wait(), drain_timeout)
        await self._sender.stop()

    async def wait_idle(self) -> None:
        """Until everything queued so far was delivered or given up (for tests and shutdown)."""
        await self._idle.wait()

    async def _run(self) -> None:
        """The sender. If it dies anyway, `KeptAlive` restarts it; what it had taken from the
        queue is still in the outbox and goes out on the next start."""
        await self._attached.wait()
        while True:
            if not self.pending and not self._dropped:
                self._idle.set()
                self._queued.clear()
                await self._queued.wait()
            batch: list[Envelope] = []
            for lane in (self._priority, self._queue):
                while lane and len(batch) < _BATCH:
                    batch.append(lane.popleft())
            for message in self._merge(batch):
                await self._deliver(message)
            if self._dropped:
                counts, self._dropped = dict(self._dropped), Counter()
                doc = dropped_doc(counts, "the alert queue was full (Telegram unreachable?)")
                for chat_id in self.chat_ids:
                    for part in to_html(doc, self.mode()):
                        await self._deliver(_Message(chat_id, part, "", False))

    def _merge(self, batch: list[Envelope]) -> list[_Message]:
        """Consecutive alerts for one chat share a message while they fit in 4,096 chars."""
        now = datetime.now(UTC)
        open_by_chat: dict[int, _Message] = {}
        messages: list[_Message] = []
        for envelope in batch:
            text = envelope.html
            if (now - envelope.created).total_seconds() > self.delayed_after:
                note = delayed_note(envelope.created, self.tz)
                if telegram_length(note + text) <= TELEGRAM_LIMIT:
                    text = note + text
                else:  # a full part: the note goes just before it, on its own
                    note_only = _Message(envelope.chat_id, note.strip(), "", True)
                    messages.append(note_only)
                    open_by_chat[envelope.chat_id] = note_only
            current = open_by_chat.get(envelope.chat_id)
            if current is not None and (
                telegram_length(current.html) + 2 + telegram_length(text) <= TELEGRAM_LIMIT
            ):
                current.html += "\n\n" + text
                current.plain = ""
                current.silent = current.silent and envelope.silent
                current.envelopes.append(envelope)
                continue
            current = _Message(envelope.chat_id, text, envelope.plain, envelope.silent, [envelope])
            open_by_chat[envelope.chat_id] = current
            messages.append(current)
        return messages

    async def _deliver(self, message: _Message) -> None:
        assert self._bot is not None
        backoff = self.initial_backoff
        as_plain = False
        while True:
            message.chat_id = self._route(message.chat_id)
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
            for envelope in message.envelopes:
                await self._done(envelope)
            return

    async def _give_up(self, message: _Message, reason: str) -> None:
        self.failed += len(message.envelopes)
        kinds = sorted({e.kind for e in message.envelopes})
        text = f"alert to chat {message.chat_id} not delivered: {reason}"
        log.error("%s", text)
        try:
            await self.outbox.log_event(
                "error",
                "telegram_delivery",
                text,
                {"kinds": kinds, "parts": len(message.envelopes)},
            )
        except Exception:  # journal down too: the log line above is all we can do
            log.exception("could not journal a delivery failure")
        for envelope in message.envelopes:
            await self._done(envelope)

    async def _done(self, envelope: Envelope) -> None:
        if envelope.outbox_id is None:
            return
        try:
            await self.outbox.outbox_done(envelope.outbox_id)
        except Exception:  # it may be sent again after a restart: a duplicate, not a loss
            log.exception("could not mark outbox entry %d done", envelope.outbox_id)
