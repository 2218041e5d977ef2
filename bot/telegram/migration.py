"""Following a group that Telegram upgraded to a supergroup, which changes its chat id.

Telegram says so in two ways: a service message in the old chat carrying `migrate_to_chat_id`,
and a 400 carrying `parameters.migrate_to_chat_id` (PTB: ChatMigrated) for anything sent to the
old id. Either one moves the running bot (commands from the new id are served, alerts go there),
and the move is kept in the journal's state table so a restart with the old id still in
TELEGRAM_ALLOWED_CHAT_IDS follows it too; the chat is told to update the setting.

Only a move away from an allowed chat is followed. The note Telegram posts in the new chat
(`migrate_from_chat_id`) is never enough by itself: it arrives from the chat that would be
added, so it is ignored, and the old chat's note or the next send's 400 does the move.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from bot.alerts import Alert
from bot.messages.access import chat_moved_doc
from bot.telegram.ports import Outbox

log = logging.getLogger(__name__)

STATE_KEY = "telegram.chat_moves"  # JSON {"old id": new id, ...}


class ChatMoves:
    """The moves of allowed chats. `allowed` is the gate's set, shared: a followed chat is added
    to it. `on_move(old, new)` re-routes the rest (alert destinations, the command menu)."""

    def __init__(
        self,
        journal: Outbox,
        allowed: set[int],
        on_move: Callable[[int, int], None],
        alert: Callable[[Alert], Awaitable[None]],
    ) -> None:
        self.journal = journal
        self.allowed = allowed
        self.on_move = on_move
        self.alert = alert
        self.moves: dict[int, int] = {}

    async def restore(self) -> None:
        """Apply the moves a previous run learned, for the chats still allowed."""
        text = await self.journal.get_state(STATE_KEY)
        try:
            saved = {int(old): int(new) for old, new in json.loads(text or "{}").items()}
        except (ValueError, TypeError, AttributeError):
            log.warning("the journal's %s row is unreadable; ignoring it", STATE_KEY)
            return
        for old, new in saved.items():  # in the order they happened, so chains resolve
            if old in self.allowed:
                self._apply(old, new)
                log.warning(
                    "chat %d became %d (remembered): update TELEGRAM_ALLOWED_CHAT_IDS", old, new
                )

    async def follow(self, old: int, new: int, how: str) -> bool:
        """Follow `old` to `new` if `old` is an allowed chat; True if this is news."""
        if old == new or self.moves.get(old) == new:
            return False
        if old not in self.allowed:
            log.warning("ignored a move of chat %d, which is not allowed, to %d", old, new)
            return False
        self._apply(old, new)
        text = f"chat {old} became {new} ({how}); following it"
        log.warning("%s: update TELEGRAM_ALLOWED_CHAT_IDS", text)
        try:
            await self.journal.set_state(
                STATE_KEY, json.dumps({str(k): v for k, v in self.moves.items()})
            )
            await self.journal.log_event("warning", "chat_moved", text, {"old": old, "new": new})
        except Exception:  # the running bot follows anyway; a restart would ask Telegram again
            log.exception("could not journal the move of chat %d", old)
        await self.alert(Alert("security", chat_moved_doc(old, new)))
        return True

    def _apply(self, old: int, new: int) -> None:
        self.moves[old] = new
        self.allowed.add(new)
        self.on_move(old, new)
