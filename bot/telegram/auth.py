"""The single gate every update passes before any handler: deny by default.

Runs as `TypeHandler(Update, gate)` in group -1, so it covers messages and button presses alike
(chat/user filters do not apply to callback queries). It stops:
- strangers: a chat not in the allowed list, or a user who is not that private chat's owner.
  They get at most a neutral "not authorized", the attempt is journaled, and the operators
  get one alert per stranger per hour;
- acting commands and confirm buttons from read-only users (when operator ids are set);
- acting commands from a group's anonymous admins when operator ids are set: they are members
  (served read-only) whose user id cannot be known, so they are asked to post as themselves.
  With no operator ids, every member of an allowed chat may act, and so may they;
- commands older than `stale_after` seconds (queued while the bot was down): not executed,
  and the user is told so. Age is measured by Telegram's clock, from when the update was
  fetched (see `bot.telegram.clock`);
- commands addressed to another bot (`/flatten@other_bot` in a group): silently ignored;
- Telegram's notes that a group became a supergroup: the old allowed chat's note is passed to
  `on_chat_moved` (see `bot.telegram.migration`), the new chat's note is dropped.

The gate blocks every later update while it runs, so it never waits on Telegram: its replies
and button answers run as separate tasks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, tzinfo
from typing import Any

from telegram import CallbackQuery, Chat, Message, Update, User
from telegram.constants import ChatID
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.alerts import Alert
from bot.commands import parse
from bot.messages.access import anonymous_doc, read_only_doc, stale_command_doc, stranger_doc
from bot.messages.document import Doc
from bot.telegram.clock import TelegramClock
from bot.telegram.ports import Outbox

log = logging.getLogger(__name__)

CONFIRM_PREFIX = "confirm:"  # callback data of the acting confirm/cancel buttons
_GROUP_TYPES = (Chat.GROUP, Chat.SUPERGROUP)
STRANGER_ALERT_INTERVAL = 3600.0


def command_of(message: Message | None) -> str | None:
    """The command name of a message that starts with a bot command entity, else None."""
    if message is None or not message.text or not message.entities:
        return None
    first = message.entities[0]
    if first.type != "bot_command" or first.offset != 0:
        return None
    return parse(message.text)[0]


def addressee(message: Message) -> str | None:
    """The bot a command names after '@' ('/flatten@my_bot' → 'my_bot'), else None."""
    first = message.entities[0] if message.entities else None
    if first is None or message.text is None:
        return None
    word = message.text[first.offset : first.offset + first.length]
    return word.partition("@")[2] or None


def who(user: User | None) -> str:
    """How the journal names a Telegram user: 'telegram:42 @alice'."""
    if user is None:
        return "telegram:unknown"
    return f"telegram:{user.id}" + (f" @{user.username}" if user.username else "")


def is_anonymous_admin(message: Message | None) -> bool:
    """A group admin posting as the group: Telegram shows GroupAnonymousBot as the sender, and
    the group itself as `sender_chat`. (Posting as another chat, a channel, is not this.)"""
    return (
        message is not None
        and message.from_user is not None
        and message.from_user.id == ChatID.ANONYMOUS_ADMIN
        and message.sender_chat is not None
        and message.sender_chat.id == message.chat.id
        and message.chat.type in _GROUP_TYPES
    )


def sender(message: Message | None, user: User | None) -> str:
    """How the journal names who sent a message: `who`, or the group's anonymous admin."""
    if is_anonymous_admin(message):
        assert message is not None
        return f"telegram:anonymous admin of {message.chat.id}"
    return who(user)


class Gate:
    """Authorization and the stale-command rule; see the module docstring."""

    def __init__(
        self,
        allowed_chat_ids: set[int],
        operator_ids: set[int],
        is_acting: Callable[[str], bool],
        journal: Outbox,
        alert: Callable[[Alert], Awaitable[None]],
        reply: Callable[[int, Doc], Awaitable[None]],
        display_tz: tzinfo = UTC,
        stale_after: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        telegram_clock: TelegramClock | None = None,
        on_chat_moved: Callable[[int, int, str], Awaitable[object]] | None = None,
    ) -> None:
        self.allowed_chat_ids = set(allowed_chat_ids)  # a chat that moves is added
        self.operator_ids = frozenset(operator_ids)
        self.is_acting = is_acting
        self.journal = journal
        self.alert = alert
        self.reply = reply
        self.tz = display_tz
        self.stale_after = stale_after
        self.clock = clock
        self.telegram_clock = telegram_clock or TelegramClock()
        self.on_chat_moved = on_chat_moved
        self._stranger_last_alert: dict[tuple[int | None, int | None], float] = {}
        self.strangers_refused = 0

    def is_allowed(
        self, chat: Chat | None, user: User | None, message: Message | None = None
    ) -> bool:
        if chat is None or user is None or chat.id not in self.allowed_chat_ids:
            return False
        if is_anonymous_admin(message):  # a member of this group, its user id hidden
            return True
        if user.is_bot:
            return False
        if message is not None and (
            message.is_automatic_forward
            or user.id == ChatID.SERVICE_CHAT
            or (message.sender_chat is not None and message.sender_chat.id != chat.id)
        ):
            # A linked channel's post forwarded into its discussion group (sent as the user
            # "Telegram", 777000): its admins need not be members of this group.
            return False
        # In a private chat only its owner may talk; in an allowed group, its members.
        return chat.type in _GROUP_TYPES or user.id == chat.id

    def may_act(self, user: User) -> bool:
        return self.may_act_id(user.id)

    def may_act_id(self, user_id: int) -> bool:
        if not self.operator_ids:
            return True  # every member of an allowed chat acts, anonymous admins included
        # An anonymous admin could be any admin of any allowed group: never an operator.
        return user_id in self.operator_ids and user_id != ChatID.ANONYMOUS_ADMIN

    async def __call__(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not isinstance(update, Update):
            raise ApplicationHandlerStop
        chat, user = update.effective_chat, update.effective_user
        age = None
        if update.message is not None:  # measured first: the fetch stamp is dropped here
            age = self.telegram_clock.age(update.update_id, update.message.date)
        message = update.message
        if message is not None and (message.migrate_to_chat_id or message.migrate_from_chat_id):
            await self._chat_moved(message)
            raise ApplicationHandlerStop
        if message is not None and command_of(message) is not None:
            target = addressee(message)
            if target is not None and target.lower() != (context.bot.username or "").lower():
                raise ApplicationHandlerStop  # '/cmd@other_bot': not for us
        if not self.is_allowed(chat, user, message):
            await self._refuse_stranger(update, context)
            raise ApplicationHandlerStop
        assert user is not None
        if update.callback_query is not None:
            query = update.callback_query
            if (query.data or "").startswith(CONFIRM_PREFIX) and not self.may_act(user):
                self._spawn(
                    context,
                    self._answer(query, "read-only access: an operator must confirm", True),
                )
                raise ApplicationHandlerStop
            return
        if message is None:  # edited messages, channel posts...: nothing to do
            raise ApplicationHandlerStop
        command = command_of(message)
        if command is None:
            return
        assert age is not None
        if age > self.stale_after:
            await self._ignore_stale(context, message, command, user, age)
            raise ApplicationHandlerStop
        if self.is_acting(command) and not self.may_act(user):
            doc = (
                anonymous_doc(f"/{command}")
                if is_anonymous_admin(message)
                else read_only_doc(f"/{command}")
            )
            self._spawn(context, self.reply(message.chat_id, doc))
            raise ApplicationHandlerStop

    async def _chat_moved(self, message: Message) -> None:
        """Follow a move announced in an allowed chat. The note in the new chat is dropped
        without a stranger alert: it is Telegram's, and the old chat's note moves the bot."""
        old, new = message.chat_id, message.migrate_to_chat_id
        if new and old in self.allowed_chat_ids and self.on_chat_moved is not None:
            await self.on_chat_moved(old, new, "Telegram's note in the old chat")
        elif new:
            log.warning("ignored the move of chat %d, which is not allowed, to %d", old, new)
        else:
            log.info("chat %d says it was chat %d", old, message.migrate_from_chat_id)

    @staticmethod
    def _spawn(context: ContextTypes.DEFAULT_TYPE, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run a reply beside the gate: the next update must not wait for Telegram."""
        context.application.create_task(coroutine, name="gate:reply")

    async def _ignore_stale(
        self,
        context: ContextTypes.DEFAULT_TYPE,
        message: Message,
        command: str,
        user: User,
        age: float,
    ) -> None:
        name = sender(message, user)
        log.warning("ignored stale /%s from %s (%.0f s old)", command, name, age)
        await self._journal(
            "warning",
            "stale_command",
            f"ignored /{command} from {name}: {age:.0f} s old",
            {"command": command, "age_seconds": round(age)},
        )
        doc = stale_command_doc(f"/{command}", message.date, self.tz, age)
        self._spawn(context, self.reply(message.chat_id, doc))

    async def _refuse_stranger(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        self.strangers_refused += 1
        chat, user = update.effective_chat, update.effective_user
        text = ""
        if update.effective_message is not None and update.effective_message.text:
            text = update.effective_message.text
        if update.callback_query is not None:
            text = f"(button) {update.callback_query.data or ''}"
        user_text = who(user) + (f" ({user.full_name})" if user is not None else "")
        chat_text = f"{chat.id} ({chat.type})" if chat is not None else "none"
        log.warning("refused stranger %s in chat %s", user_text, chat_text)
        await self._journal(
            "warning", "stranger", f"refused {user_text} in chat {chat_text}", {"text": text[:200]}
        )
        key = (chat.id if chat else None, user.id if user else None)
        now = self.clock()
        last = self._stranger_last_alert.get(key)
        if last is not None and now - last < STRANGER_ALERT_INTERVAL:
            if update.callback_query is not None:
                self._spawn(context, self._answer(update.callback_query, None))
            return
        self._stranger_last_alert[key] = now
        await self.alert(Alert("security", stranger_doc(user_text, chat_text, text)))
        if update.callback_query is not None:
            self._spawn(context, self._answer(update.callback_query, "not authorized"))
        elif update.effective_message is not None and chat is not None:
            self._spawn(context, self._tell_stranger(context, chat.id))

    @staticmethod
    async def _tell_stranger(context: ContextTypes.DEFAULT_TYPE, chat_id: int) -> None:
        try:
            await context.bot.send_message(chat_id, "not authorized")
        except TelegramError as exc:
            log.info("could not tell a stranger they are not authorized: %s", exc.message)

    @staticmethod
    async def _answer(query: CallbackQuery, text: str | None, show_alert: bool = False) -> None:
        try:
            await query.answer(text, show_alert=show_alert)
        except TelegramError as exc:
            log.info("could not answer a button press: %s", exc.message)

    async def _journal(self, level: str, kind: str, text: str, details: dict[str, object]) -> None:
        try:
            await self.journal.log_event(level, kind, text, details)
        except Exception:  # journal down: the log line already says it
            log.exception("could not journal %s", kind)
