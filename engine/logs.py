"""Logging to the console and a rotating file (none when LOG_DIR is empty: stderr is the log),
with secrets redacted from all text the process writes.

Two layers, because a token can leave through paths logging never sees:
- the formatter redacts every log record (message, arguments, traceback), whichever logger
  (ours, httpx's, PTB's) produced it, before it reaches the console or the log file;
- `redact_process_output` replaces `sys.stdout` and `sys.stderr` with line-redacting streams,
  which covers what bypasses logging: tracebacks printed by `sys.excepthook` and
  `threading.excepthook`, `warnings`, and `print`. All of them look `sys.stderr` up when they
  write, so one swap covers them all, with no hook to keep in step with each.
The secrets given here are also remembered process-wide, so `redact(text)` anywhere (the
journal's event rows, the text of Telegram messages) removes them without being told again.
Writes to the raw file descriptors (C extensions, child processes) are not covered: none of
them knows the token.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

# A Telegram bot token in any text: "<bot id>:<35 url-safe characters>".
_TOKEN_PATTERN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}")
REDACTED = "[REDACTED]"
_secrets: set[str] = set()  # every secret this process was told about


def add_secrets(secrets: Iterable[str]) -> None:
    """Remember secrets for every later `redact` in this process."""
    _secrets.update(secret for secret in secrets if secret)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in (*secrets, *_secrets):
        if secret:
            text = text.replace(secret, REDACTED)
    return _TOKEN_PATTERN.sub(REDACTED, text)


class RedactingStream:
    """A text stream that redacts each line before passing it to the stream it wraps.

    Text is held until its line is complete (or `flush` is called), so a secret written in
    pieces, as `traceback` and `print` do, is still seen whole."""

    _HOLD_LIMIT = 65536  # a line this long without a newline is passed on anyway

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner
        self._held = ""
        self._lock = threading.Lock()  # the journal writer thread logs too

    def write(self, text: str) -> int:
        with self._lock:
            self._held += text
            complete, newline, rest = self._held.rpartition("\n")
            if newline:
                self.inner.write(redact(complete + newline))
                self._held = rest
            if len(self._held) > self._HOLD_LIMIT:
                self.inner.write(redact(self._held))
                self._held = ""
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        with self._lock:
            if self._held:
                self.inner.write(redact(self._held))
                self._held = ""
        self.inner.flush()

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding...: the real stream's
        return getattr(self.inner, name)


def redact_process_output(secrets: Iterable[str] = ()) -> None:
    """Remember `secrets` and redact everything later written to sys.stdout and sys.stderr."""
    add_secrets(secrets)
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, RedactingStream):
            setattr(sys, name, RedactingStream(stream))


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


# ib_async's ERROR lines for a refused or dropped connection, repeated at every retry while the
# gateway is away (its nightly restart): the bot's own connection alerts say the same once.
CONNECTION_NOISE = (
    "API connection failed",
    "Make sure API port on TWS/IBG is open",
    "Peer closed connection",
)


class ConnectionNoise(logging.Filter):
    """Keeps ib_async's connection-failure lines off the console (they stay in the log file)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("ib_async"):
            return True
        return not str(record.msg).startswith(CONNECTION_NOISE)


def setup_logging(
    level: str = "INFO",
    log_dir: Path | None = None,
    secrets: Iterable[str] = (),
    console: bool = True,
) -> None:
    """Configure the root logger once for the process, and redact `secrets` (and anything
    shaped like a bot token) from all it writes; see the module docstring.

    With a `log_dir`, the console shows what a person watching it needs and the file keeps
    everything; without one (journald, Docker), stderr is the log and keeps everything at
    `level` except the chatty libraries' INFO lines."""
    redact_process_output(secrets)
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
            if log_dir is not None:
                stream.addFilter(ConnectionNoise())
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
