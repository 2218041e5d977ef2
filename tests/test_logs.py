"""The bot token never reaches a log line, whoever logs it."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from engine.journal import Journal
from engine.logs import REDACTED, add_secrets, setup_logging

TOKEN = "1234567890:AAExampleExampleExampleExampleExam"


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    streams = sys.stdout, sys.stderr
    yield
    sys.stdout, sys.stderr = streams
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


# Every way text leaves a Python process without going through a log handler.
_LEAKS = """
import asyncio, gc, sys, threading, warnings
from pathlib import Path
from engine.logs import setup_logging

secret = sys.argv[1]
setup_logging("INFO", Path(sys.argv[2]), secrets=[secret])
print("print:", secret)
print("stderr:", secret, file=sys.stderr)
sys.stdout.write("pieces: " + secret[:6])  # a secret written in two pieces
sys.stdout.write(secret[6:] + "\\n")
warnings.warn("warning: " + secret)

def fail():
    raise RuntimeError("thread: " + secret)

thread = threading.Thread(target=fail)
thread.start()
thread.join()

async def lost():
    future = asyncio.get_running_loop().create_future()
    future.set_exception(RuntimeError("never retrieved: " + secret))

asyncio.run(lost())
gc.collect()
if sys.argv[3] == "exit":
    raise SystemExit("exit: " + secret)
raise RuntimeError("uncaught: " + secret)
"""


@pytest.mark.parametrize("ending", ["exit", "uncaught"])
def test_secrets_are_redacted_from_everything_the_process_writes(
    tmp_path: Path, ending: str
) -> None:
    secret = "not-shaped-like-a-token-but-secret"  # only the secrets list can catch it
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_LEAKS), secret, str(tmp_path), ending],
        capture_output=True, text=True, timeout=30, cwd=Path(__file__).parents[1],
    )  # fmt: skip
    out, err = done.stdout, done.stderr
    assert done.returncode == 1
    for seen in ("print:", "pieces:"):
        assert f"{seen} {REDACTED}" in out
    for seen in ("stderr:", "warning:", "thread:", "never retrieved:", f"{ending}:"):
        assert f"{seen} {REDACTED}" in err, err
    assert secret not in out + err
    assert secret not in (tmp_path / "tradebot.log").read_text()


async def test_journaled_events_are_redacted(tmp_path: Path) -> None:
    secret = "another-secret-without-a-token-shape"
    add_secrets([secret])
    journal = await Journal.open(tmp_path / "journal.sqlite3")
    try:
        await journal.log_event("error", "telegram", f"failed: {secret}", {"why": secret})
        await journal.log_event("error", "telegram", f"token {TOKEN}")
        events = await journal.recent_events()
    finally:
        await journal.close()
    assert [e.message for e in events] == [f"token {REDACTED}", f"failed: {REDACTED}"]
    assert events[1].details == {"why": REDACTED}
    _nowhere_in(tmp_path, [secret, TOKEN])


def _nowhere_in(folder: Path, secrets: list[str]) -> None:
    for path in folder.iterdir():
        data = path.read_bytes()
        assert not [secret for secret in secrets if secret.encode() in data], path


def test_connection_noise_goes_to_the_file_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    setup_logging("INFO", tmp_path)
    client = logging.getLogger("ib_async.client")
    client.error("API connection failed: ConnectionRefusedError(111, 'refused')")
    client.error("Make sure API port on TWS/IBG is open")
    client.error("Peer closed connection.")
    logging.getLogger("ib_async.wrapper").error("Error 201, reqId 7: Order rejected")
    logging.getLogger("engine.connection").warning("cannot connect to 127.0.0.1:4002")
    for handler in logging.getLogger().handlers:
        handler.flush()
    console = capsys.readouterr().err
    logfile = (tmp_path / "tradebot.log").read_text()
    for noise in ("API connection failed", "Make sure API port", "Peer closed connection"):
        assert noise not in console
        assert noise in logfile
    for kept in ("Order rejected", "cannot connect to"):
        assert kept in console and kept in logfile


def test_without_a_log_dir_stderr_is_the_whole_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_logging: None, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    setup_logging("INFO", None)
    logging.getLogger("ib_async.client").error("Make sure API port on TWS/IBG is open")
    logging.getLogger("ib_async.ib").info("chatty order status")
    console = capsys.readouterr().err
    assert "Make sure API port" in console
    assert "chatty order status" not in console
    assert list(tmp_path.iterdir()) == []
