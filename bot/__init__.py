"""tradebot front-ends: the CLI entry point, the console and the Telegram bot."""
