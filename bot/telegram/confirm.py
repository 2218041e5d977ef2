"""The inline confirm/cancel flow for acting commands (/flatten, /cancelall).

A prompt with two buttons is valid for `ttl` seconds and for one press, by the user who asked
or an operator (the journal names who confirmed). A group's anonymous admin cannot be told
from the others, so their prompt may be answered by any member the gate lets confirm (the
press, unlike the command, shows who it is). The prompt is retried a few times if
Telegram fails; if it cannot be shown, the user is told (through the alert queue) to ask
again. On "yes" the action starts at once, before any Telegram I/O, so a slow Telegram cannot
delay the kill switch; progress lines are shown by editing the prompt (coalesced, at most one
edit per `edit_interval`), and the final report replaces it once the last progress edit has
finished. If that final edit fails, the report goes through the reliable alert delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from telegram import (
    Bot,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
    User,
)
from telegram.constants import ChatID, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import ContextTypes

from bot.commands import Confirm
from bot.messages.document import Doc, to_html
from bot.messages.kill_switch import cancelled_doc, confirm_doc, expired_doc, progress_doc
from bot.messages.status import error_doc
from bot.telegram.auth import CONFIRM_PREFIX, who
from bot.telegram.delivery import AlertDelivery, retry_after_seconds

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Pending:
    confirm: Confirm
    chat_id: int
    requester_id: int
    requester: str  # as the journal names them
    message_id: int = 0  # 0 until the prompt was shown
    expires_at: float = float("inf")
    expiry: asyncio.Task[None] | None = None


class _ProgressMessage:
    """Edits one message with the latest progress without ever making the action wait."""

    def __init__(
        self, bot: Bot, chat_id: int, message_id: int, working: str, mode: str, interval: float
    ) -> None:
        self.bot, self.chat_id, self.message_id = bot, chat_id, message_id
        self.working, self.mode, self.interval = working, mode, interval
        self.lines: list[str] = []
        self._dirty = asyncio.Event()
        self._dirty.set()  # the first edit removes the buttons
        self._finishing = asyncio.Event()
        self._shown = ""
        self._task = asyncio.create_task(self._run(), name="telegram:progress")

    async def add(self, line: str) -> None:
        self.lines.append(line)
        self._dirty.set()

    async def _run(self) -> None:
        while not self._finishing.is_set():
            await self._dirty.wait()
            if self._finishing.is_set():
                return
            self._dirty.clear()
            await self._edit(progress_doc(self.working, self.lines))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finishing.wait(), self.interval)

    async def _edit(self, doc: Doc) -> bool:
        text = to_html(doc, self.mode)[0]
        if text == self._shown:
            return True
        try:
            await self.bot.edit_message_text(
                text, chat_id=self.chat_id, message_id=self.message_id, parse_mode=ParseMode.HTML
            )
        except TelegramError as exc:
            log.warning("could not edit the progress message: %s", exc.message)
            return False
        self._shown = text
        return True

    async def finish(self, doc: Doc, delivery: AlertDelivery) -> None:
        """Show the final report. A progress edit in flight is let finish first: cancelled,
        it could still reach Telegram after the report and overwrite it."""
        self._finishing.set()
        self._dirty.set()
        await self._task
        parts = to_html(doc, self.mode)
        first_ok = len(parts) == 1 and await self._edit(doc)
        if not first_ok:
            await delivery.send_doc(self.chat_id, doc, kind="report")


class ConfirmFlow:
    """Prompts, button presses, expiry, and running the confirmed action."""

    def __init__(
        self,
        delivery: AlertDelivery,
        mode: Callable[[], str],
        ttl: float = 60.0,
        edit_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        operator_ids: set[int] | None = None,
        attempts: int = 3,
        backoff: float = 0.5,
    ) -> None:
        self.delivery = delivery
        self.mode = mode
        self.ttl = ttl
        self.edit_interval = edit_interval
        self.clock = clock
        self.operator_ids = frozenset(operator_ids or ())
        self.attempts = attempts
        self.backoff = backoff
        self._pending: dict[str, _Pending] = {}
        self._running: set[asyncio.Task[None]] = set()

    async def ask(
        self,
        bot: Bot,
        chat_id: int,
        confirm: Confirm,
        requester: User,
        requester_name: str | None = None,
    ) -> None:
        token = secrets.token_urlsafe(6)
        buttons = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        f"✅ Yes, {confirm.action}", callback_data=f"{CONFIRM_PREFIX}{token}:yes"
                    ),
                    InlineKeyboardButton("✖️ Cancel", callback_data=f"{CONFIRM_PREFIX}{token}:no"),
                ]
            ]
        )
        prompt = confirm_doc(confirm.action, confirm.question, self.ttl)
        pending = _Pending(confirm, chat_id, requester.id, requester_name or who(requester))
        self._pending[token] = pending  # before sending: the prompt exists once it is asked
        sent = await self._send_prompt(bot, chat_id, to_html(prompt, self.mode())[0], buttons)
        if self._pending.get(token) is not pending:  # shutting down meanwhile
            return
        if sent is None:
            del self._pending[token]
            doc = error_doc(f"Could not show the confirmation; send /{confirm.action} again")
            await self.delivery.send_doc(chat_id, doc)
            return
        pending.message_id = sent.message_id
        pending.expires_at = self.clock() + self.ttl
        pending.expiry = asyncio.create_task(self._expire(bot, token, pending), name="confirm:ttl")

    async def _send_prompt(
        self, bot: Bot, chat_id: int, text: str, buttons: InlineKeyboardMarkup
    ) -> Message | None:
        """Send the prompt, retrying a 429, a 5xx or a timeout; None when it could not be."""
        backoff = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                return await bot.send_message(
                    chat_id, text, parse_mode=ParseMode.HTML, reply_markup=buttons
                )
            except (Forbidden, BadRequest) as exc:
                log.warning("the confirmation prompt was refused: %s", exc.message)
                return None
            except RetryAfter as exc:
                wait = retry_after_seconds(exc)
            except NetworkError as exc:
                log.warning(
                    "could not send the confirmation prompt (attempt %d: %s)", attempt, exc.message
                )
                wait, backoff = backoff, backoff * 2
            except TelegramError as exc:
                log.warning("the confirmation prompt failed: %s", exc.message)
                return None
            if attempt < self.attempts:
                await asyncio.sleep(wait)
        return None

    async def _expire(self, bot: Bot, token: str, pending: _Pending) -> None:
        await asyncio.sleep(self.ttl)
        if self._pending.pop(token, None) is None:
            return
        await self._edit(bot, pending, expired_doc(pending.confirm.action))

    async def on_press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or query.data is None or not query.data.startswith(CONFIRM_PREFIX):
            return
        token, _, answer = query.data.removeprefix(CONFIRM_PREFIX).partition(":")
        pending = self._pending.get(token)
        chat, presser = update.effective_chat, update.effective_user
        if pending is None or chat is None or pending.chat_id != chat.id or not pending.message_id:
            await self._answer(query, "this confirmation is no longer valid")
            return
        if presser is None or (
            presser.id != pending.requester_id
            and presser.id not in self.operator_ids
            and pending.requester_id != ChatID.ANONYMOUS_ADMIN
        ):
            await self._answer(query, "only who asked, or an operator, can answer this")
            return
        del self._pending[token]
        if pending.expiry is not None:
            pending.expiry.cancel()
        action = pending.confirm.action
        if self.clock() > pending.expires_at:
            await self._answer(query, "expired: nothing was done")
            await self._edit(context.bot, pending, expired_doc(action))
            return
        if answer != "yes":
            await self._answer(query, "cancelled")
            await self._edit(context.bot, pending, cancelled_doc(action))
            return
        by = pending.requester
        if presser.id != pending.requester_id:
            by = f"{who(presser)} (asked by {pending.requester})"
        log.warning("%s confirmed by %s", action, by)
        progress = _ProgressMessage(
            context.bot,
            pending.chat_id,
            pending.message_id,
            pending.confirm.working,
            self.mode(),
            self.edit_interval,
        )
        task = asyncio.create_task(self._run(pending, progress, by), name=f"confirm:{action}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        await self._answer(query, f"{pending.confirm.working}…")

    async def _run(self, pending: _Pending, progress: _ProgressMessage, by: str) -> None:
        try:
            doc = await pending.confirm.run(progress.add, by)
        except Exception as exc:  # tell the user; the kill switch failing must be loud
            log.exception("%s failed", pending.confirm.action)
            doc = error_doc(f"{pending.confirm.action} FAILED: {type(exc).__name__}: {exc}")
        await progress.finish(doc, self.delivery)

    async def _edit(self, bot: Bot, pending: _Pending, doc: Doc) -> None:
        try:
            await bot.edit_message_text(
                to_html(doc, self.mode())[0],
                chat_id=pending.chat_id,
                message_id=pending.message_id,
                parse_mode=ParseMode.HTML,
            )
        except TelegramError as exc:
            log.warning("could not edit the confirmation message: %s", exc.message)

    @staticmethod
    async def _answer(query: CallbackQuery, text: str) -> None:
        try:
            await query.answer(text)
        except TelegramError as exc:
            log.info("could not answer a button press: %s", exc.message)

    async def stop(self, grace: float = 10.0) -> None:
        """Drop open prompts; let a running flatten finish (for at most `grace` seconds)."""
        for pending in self._pending.values():
            if pending.expiry is not None:
                pending.expiry.cancel()
        self._pending.clear()
        if self._running:
            await asyncio.wait(set(self._running), timeout=grace)
