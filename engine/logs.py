"""Logging to the console and a rotating file, with secrets redacted from every line.

Redaction happens in the formatter, so it covers the message, its arguments and any traceback,
whichever logger (ours, httpx's, PTB's) produced the record.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
from collections.abc import Iterable
from pathlib import Path

# A Telegram bot token in any text: "<bot id>:<35 url-safe characters>".
_TOKEN_PATTERN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}")
REDACTED = "[REDACTED]"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return _TOKEN_PATTERN.sub(REDACTED, text)


class RedactingFormatter(logging.Formatter):
    def __init__(self, fmt: str, secrets: Iterable[str] = ()) -> None:
        super().__init__(fmt)
        self.secrets = tuple(secret for secret in secrets if secret)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

# Libraries whose INFO lines (every order status, every portfolio update) belong in the log
# file, not between the alerts on the console.
CHATTY = ("ib_async", "ibsim")


class QuietLibraries(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not record.name.startswith(CHATTY)


def setup_logging(
    level: str = "INFO",
    log_dir: Path | None = None,
    secrets: Iterable[str] = (),
    console: bool = True,
) -> None:
    """Configure the root logger once for the process."""
    formatter = RedactingFormatter(LOG_FORMAT, secrets)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    if console:
        stream = logging.StreamHandler()
        stream.setFormatter(formatter)
        if level != "DEBUG":
            stream.addFilter(QuietLibraries())
        root.addHandler(stream)
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        rotating = logging.handlers.RotatingFileHandler(
            log_dir / "tradebot.log", maxBytes=5_000_000, backupCount=5, encoding="utf-8"
        )
        rotating.setFormatter(formatter)
        root.addHandler(rotating)
    root.setLevel(level)
    # httpx logs every request URL at INFO, and Telegram's URLs carry the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # ib_async is chatty at INFO; its warnings and errors still come through.
    logging.getLogger("ib_async").setLevel(max(logging.getLevelName(level), logging.INFO))
