"""The Telegram front-end: python-telegram-bot 22 running inside the engine's event loop."""

from bot.telegram.app import TelegramFrontEnd, TelegramTuning

__all__ = ["TelegramFrontEnd", "TelegramTuning"]
