"""The Telegram front-end: python-telegram-bot 22 running inside the engine's event loop.

Start at `bot.telegram.app` (`TelegramFrontEnd`); the package itself imports nothing, so
importing one of its modules does not pull in the others."""
