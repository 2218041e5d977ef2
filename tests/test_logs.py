"""The bot token never reaches a log line, whoever logs it."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from engine.logs import REDACTED, setup_logging

TOKEN = "1234567890:AAExampleExampleExampleExampleExam"


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_token_is_redacted_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    setup_logging("DEBUG", tmp_path, secrets=[TOKEN])
    # Even if someone turns httpx's request logging back on, the URL is redacted.
    logging.getLogger("httpx").setLevel(logging.INFO)
    url = f"https://api.telegram.org/bot{TOKEN}/getUpdates"
    logging.getLogger("httpx").info('HTTP Request: POST %s "HTTP/1.1 200 OK"', url)
    logging.getLogger("telegram.ext").warning("token %s in args", TOKEN)
    try:
        raise httpx.ConnectError(f"failed {url}")
    except httpx.ConnectError:
        logging.getLogger("tradebot").exception("send failed")
    # A token we were not told about is still caught by its shape.
    logging.getLogger("x").error("other 9876543210:BBxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
    for handler in logging.getLogger().handlers:
        handler.flush()
    console = capsys.readouterr().err
    logfile = (tmp_path / "tradebot.log").read_text()
    for text in (console, logfile):
        assert TOKEN not in text
        assert "9876543210:BB" not in text
        assert text.count(REDACTED) >= 4


def test_httpx_request_logging_is_quiet_by_default(restore_logging: None) -> None:
    setup_logging("DEBUG", None, secrets=[TOKEN])
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
