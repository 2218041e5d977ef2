"""Thin PTB handlers: read the update, run the shared command, send the result back."""

from __future__ import annotations

import logging
from collections.abc import Callable

from telegram import Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.commands import Commands, Confirm, Photo, Reply
from bot.messages.document import Doc, to_html
from bot.messages.status import error_doc
from bot.telegram.auth import CONFIRM_PREFIX, Gate, sender
from bot.telegram.confirm import ConfirmFlow
from bot.telegram.delivery import AlertDelivery

log = logging.getLogger(__name__)


class Handlers:
    def __init__(
        self,
        commands: Commands,
        confirm: ConfirmFlow,
        delivery: AlertDelivery,
        mode: Callable[[], str],
    ) -> None:
        self.commands = commands
        self.confirm = confirm
        self.delivery = delivery
        self.mode = mode

    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or message.text is None:
            return
        by = sender(message, update.effective_user)
        result = await self.commands.execute(message.text, by=by)
        chat_id = message.chat_id
        match result:
            case Reply(doc=doc):
                await self.delivery.reply(chat_id, doc)
            case Photo(png=png, caption=caption):
                try:
                    await context.bot.send_photo(
                        chat_id,
                        png,
                        caption=to_html(caption, self.mode(), limit=1024)[0],
                        parse_mode=ParseMode.HTML,
                        filename="chart.png",
                    )
                except TelegramError as exc:
                    log.warning("could not send a chart: %s", exc.message)
                    await self.delivery.reply(chat_id, error_doc("The chart could not be sent"))
            case Confirm():
                assert update.effective_user is not None  # the gate let only users through
                await self.confirm.ask(context.bot, chat_id, result, update.effective_user, by)

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is not None:
            await self.delivery.reply(message.chat_id, Doc("I understand commands: send /help"))

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        error = context.error
        log.error(
            "error while handling an update: %s: %s",
            type(error).__name__,
            error,
            exc_info=not isinstance(error, TelegramError),
        )


def build(gate: Gate, handlers: Handlers) -> list[tuple[BaseHandler, int]]:  # type: ignore[type-arg]
    """(handler, group) pairs; the gate runs first, in group -1, for every update."""
    return [
        (TypeHandler(Update, gate), -1),
        (MessageHandler(filters.COMMAND, handlers.on_command, block=False), 0),
        (MessageHandler(filters.TEXT & ~filters.COMMAND, handlers.on_text, block=False), 0),
        (
            CallbackQueryHandler(
                handlers.confirm.on_press, pattern=f"^{CONFIRM_PREFIX}", block=False
            ),
            0,
        ),
    ]
