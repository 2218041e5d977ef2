"""Shared test fixtures: every test fails on an ib_async decoder error log record."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

# httpx honours proxy variables even for 127.0.0.1; tests talk only to loopback servers.
os.environ["NO_PROXY"] = "127.0.0.1,localhost"
os.environ["no_proxy"] = "127.0.0.1,localhost"
os.environ.setdefault("PTB_TIMEDELTA", "true")

# Messages from ib_async that mean our simulated gateway sent something the client could not use.
_DECODER_ERROR_MARKERS = (
    "Error handling fields",
    "No order found",
    "Unknown reqId",
    "Unknown contract",
)


class _DecoderErrorCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        decoder_failed = record.name == "ib_async.Decoder" and record.levelno >= logging.ERROR
        if decoder_failed or any(m in record.getMessage() for m in _DECODER_ERROR_MARKERS):
            self.records.append(record)


@pytest.fixture(autouse=True)
def fail_on_ib_decoder_errors() -> Iterator[None]:
    """Fail the test if ib_async could not decode or place a message our gateway sent."""
    collector = _DecoderErrorCollector()
    loggers = [logging.getLogger(name) for name in ("ib_async.Decoder", "ib_async.wrapper")]
    for logger in loggers:
        logger.addHandler(collector)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(collector)
    if collector.records:
        lines = "\n".join(f"{r.name}: {r.getMessage()[:500]}" for r in collector.records[:5])
        pytest.fail(f"ib_async reported decoder errors:\n{lines}")
