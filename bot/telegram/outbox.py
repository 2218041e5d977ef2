"""The alert outbox: what waits to go to Telegram, in which order, merged how; it sends nothing.

Each alert is rendered to Telegram HTML parts, one `Envelope` per part and chat, written to the
journal's outbox and queued in one of two lanes. Flatten reports and security alerts go in a
priority lane that is taken first and never dropped; routine alerts go in a lane of at most
`bound`, and when it is full they are dropped, counted, and told in one notice. The sender takes
batches: consecutive parts for one chat merged into messages under Telegram's 4,096 limit, a
part sent late marked as delayed. An envelope leaves the journal's outbox once it was sent or
given up; what is still there after a crash is queued again by `restore`.

A chat Telegram moved to a new id (`move_chat`): queued and later parts for the old id go to
the new one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

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
class OutgoingMessage:
    """What one sendMessage carries: one or more envelopes for the same chat."""

    chat_id: int
    html: str
    plain: str
    silent: bool
    envelopes: list[Envelope] = field(default_factory=list)


class AlertQueue:
    """The two lanes, backed by the journal's outbox. Producers never wait for Telegram."""

    def __init__(
        self,
        outbox: Outbox,
        chat_ids: Iterable[int],
        mode: Callable[[], str],
        display_tz: tzinfo = UTC,
        bound: int = 1000,
        delayed_after: float = 60.0,
    ) -> None:
        self.outbox = outbox
        self.chat_ids = tuple(sorted(set(chat_ids)))
        self.mode = mode
        self.tz = display_tz
        self.bound = bound
        self.delayed_after = delayed_after
        self._queue: deque[Envelope] = deque()  # routine alerts, at most `bound`
        self._priority: deque[Envelope] = deque()  # reports and security alerts
        self._queued = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._dropped: Counter[str] = Counter()
        self._moved: dict[int, int] = {}  # chat id → the id Telegram moved it to
        self.dropped_total = 0  # alert parts dropped because the queue was full

    # --- producer side ---------------------------------------------------------------------

    async def submit(self, alert: Alert) -> None:
        """Persist and queue an alert for every chat; drops (and counts) when the queue is full."""
        parts = to_html(alert.doc, self.mode())
        plain = to_plain(alert.doc, self.mode())[:TELEGRAM_LIMIT]
        for chat_id in self.chat_ids:
            for part in parts:
                await self.enqueue(
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
            await self.enqueue(
                Envelope(self.route(chat_id), part, "", kind, False, datetime.now(UTC))
            )

    async def enqueue(self, envelope: Envelope) -> None:
        """Journal `envelope` in the outbox and queue it, unless the routine lane is full."""
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
            envelope.chat_id = self.route(envelope.chat_id)
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

    # --- chats that moved --------------------------------------------------------------------

    def move_chat(self, old: int, new: int) -> None:
        """From now on, what is meant for `old` goes to `new`, including what is queued."""
        self._moved[old] = new
        self.chat_ids = tuple(sorted({self.route(chat_id) for chat_id in self.chat_ids}))
        for lane in (self._priority, self._queue):
            for envelope in lane:
                envelope.chat_id = self.route(envelope.chat_id)

    def route(self, chat_id: int) -> int:
        """The id `chat_id` lives at now, following every move."""
        seen = {chat_id}
        while chat_id in self._moved and self._moved[chat_id] not in seen:
            chat_id = self._moved[chat_id]
            seen.add(chat_id)
        return chat_id

    # --- sender side -----------------------------------------------------------------------

    async def wait_for_work(self) -> None:
        """Until something is queued or was dropped; meanwhile the queue counts as idle."""
        if not self.pending and not self._dropped:
            self._idle.set()
            self._queued.clear()
            await self._queued.wait()

    async def wait_idle(self) -> None:
        """Until the sender found nothing left to send."""
        await self._idle.wait()

    def take(self) -> list[OutgoingMessage]:
        """The next batch, priority lane first, merged into messages."""
        batch: list[Envelope] = []
        for lane in (self._priority, self._queue):
            while lane and len(batch) < _BATCH:
                batch.append(lane.popleft())
        return self._merge(batch)

    def take_dropped_notice(self) -> list[OutgoingMessage]:
        """One message per chat counting the alerts dropped since the last notice, if any."""
        if not self._dropped:
            return []
        counts, self._dropped = dict(self._dropped), Counter()
        doc = dropped_doc(counts, "the alert queue was full (Telegram unreachable?)")
        return [
            OutgoingMessage(chat_id, part, "", False)
            for chat_id in self.chat_ids
            for part in to_html(doc, self.mode())
        ]

    def _merge(self, batch: list[Envelope]) -> list[OutgoingMessage]:
        """Consecutive alerts for one chat share a message while they fit in 4,096 chars."""
        now = datetime.now(UTC)
        open_by_chat: dict[int, OutgoingMessage] = {}
        messages: list[OutgoingMessage] = []
        for envelope in batch:
            text = envelope.html
            if (now - envelope.created).total_seconds() > self.delayed_after:
                note = delayed_note(envelope.created, self.tz)
                if telegram_length(note + text) <= TELEGRAM_LIMIT:
                    text = note + text
                else:  # a full part: the note goes just before it, on its own
                    note_only = OutgoingMessage(envelope.chat_id, note.strip(), "", True)
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
            current = OutgoingMessage(
                envelope.chat_id, text, envelope.plain, envelope.silent, [envelope]
            )
            open_by_chat[envelope.chat_id] = current
            messages.append(current)
        return messages

    async def sent(self, message: OutgoingMessage) -> None:
        """Telegram accepted `message`: its envelopes leave the outbox."""
        for envelope in message.envelopes:
            await self._done(envelope)

    async def given_up(self, message: OutgoingMessage, reason: str) -> None:
        """`message` will never be sent: journal why, and its envelopes leave the outbox."""
        kinds = sorted({e.kind for e in message.envelopes})
        try:
            await self.outbox.log_event(
                "error",
                "telegram_delivery",
                reason,
                {"kinds": kinds, "parts": len(message.envelopes)},
            )
        except Exception:  # journal down too: the sender's log line is all there is
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
