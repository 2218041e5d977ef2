"""One `tradebot run` per journal (issue 8, item 2): the second exits 2 at once naming DB_PATH
and the running process; `tradebot journal` still reads; kill -9 leaves no stale lock."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path

import pytest

from bot.instance_lock import InstanceLock, lock_path
from engine.errors import ConfigurationError
from tests.tradebot_script import TRADEBOT, clean_env, run_tradebot


def test_second_lock_on_one_journal_is_refused_naming_the_holder(tmp_path: Path) -> None:
    db = tmp_path / "journal.sqlite3"
    with InstanceLock(db):
        assert lock_path(db).read_text() == f"{os.getpid()}\n"
        with pytest.raises(ConfigurationError) as caught:
            InstanceLock(db).acquire()
        assert str(caught.value) == (
            f"DB_PATH: {db} is in use by another tradebot (process {os.getpid()}); stop it "
            "first, or give this one its own DB_PATH"
        )
    with InstanceLock(db):  # released: taken again at once
        pass
    # The journal's own inode is locked too: created empty when missing (an empty database).
    assert lock_path(db).exists() and db.stat().st_size == 0


def test_a_hard_link_to_the_journal_finds_it_locked(tmp_path: Path) -> None:
    """Another name of the same file (a hard link, a bind mount) has another lock file beside
    it, but the same inode: before, a second instance ran, two WAL files on one database."""
    db = tmp_path / "a.sqlite3"
    with InstanceLock(db):
        os.link(db, tmp_path / "b.sqlite3")
        with pytest.raises(ConfigurationError, match="under another name of the same file"):
            InstanceLock(tmp_path / "b.sqlite3").acquire()
    with InstanceLock(tmp_path / "b.sqlite3"):  # released with the first
        pass


def test_every_name_of_one_journal_finds_the_same_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "data")
    (tmp_path / "data" / "journal.sqlite3").touch()
    (tmp_path / "alias.sqlite3").symlink_to(tmp_path / "data" / "journal.sqlite3")
    monkeypatch.chdir(tmp_path)
    with InstanceLock(Path("data/journal.sqlite3")):
        for other in ("./data/journal.sqlite3", "link/journal.sqlite3", "alias.sqlite3",
                      str(tmp_path / "data" / ".." / "data" / "journal.sqlite3")):  # fmt: skip
            with pytest.raises(ConfigurationError, match=re.escape(f"{Path(other)} is in use")):
                InstanceLock(Path(other)).acquire()


def test_other_journals_are_not_locked(tmp_path: Path) -> None:
    with InstanceLock(tmp_path / "a.sqlite3"), InstanceLock(tmp_path / "b.sqlite3"):
        pass


def _env(tmp_path: Path, logs: str) -> dict[str, str]:
    return clean_env(
        DB_PATH=str(tmp_path / "journal.sqlite3"), LOG_DIR=str(tmp_path / logs), SIM_SPEED="60"
    )


async def _start(tmp_path: Path) -> asyncio.subprocess.Process:
    """`tradebot run` on the simulator and console, once it has its journal and gateway."""
    process = await asyncio.create_subprocess_exec(
        str(TRADEBOT), "run", cwd=tmp_path, env=_env(tmp_path, "logs"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    seen = b""
    while b"SIMULATED GATEWAY" not in seen:
        line = await asyncio.wait_for(process.stderr.readline(), 20)
        assert line, "tradebot run ended early:\n" + seen.decode()
        seen += line
    # Keep reading, so a full pipe never blocks the bot's logging.
    _draining.add(asyncio.ensure_future(process.stderr.read()))
    return process


_draining: set[asyncio.Future[bytes]] = set()


async def _stop(process: asyncio.subprocess.Process) -> int:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(process.wait(), 20)


@pytest.fixture(autouse=True)
async def _drained():
    yield
    for future in _draining:
        future.cancel()
    _draining.clear()


async def test_second_run_on_one_journal_exits_2_at_once(tmp_path: Path) -> None:
    first = await _start(tmp_path)
    try:
        second = await asyncio.to_thread(
            run_tradebot, "run", cwd=tmp_path, env=_env(tmp_path, "logs-second"), timeout=20
        )
        assert second.code == 2, second.stderr
        assert second.lines == [
            f"tradebot: DB_PATH: {tmp_path / 'journal.sqlite3'} is in use by another tradebot "
            f"(process {first.pid}); stop it first, or give this one its own DB_PATH"
        ]
        assert second.seconds < 3
        # Taken before anything else: no log set up, no banner, no gateway, no Telegram.
        assert not (tmp_path / "logs-second").exists()
        assert "SIMULATED" not in second.stderr + second.stdout

        # The read-only journal command still works while the bot runs.
        journal = await asyncio.to_thread(
            run_tradebot, "journal", cwd=tmp_path, env=_env(tmp_path, "logs"), timeout=20
        )
        assert journal.code == 0, journal.stderr
        assert "Orders (" in journal.stdout and "Events (" in journal.stdout
        assert first.returncode is None
        assert await _stop(first) == 0
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()


async def test_kill_9_leaves_no_stale_lock(tmp_path: Path) -> None:
    first = await _start(tmp_path)
    first.kill()  # SIGKILL: no clean-up runs
    assert await first.wait() == -signal.SIGKILL
    assert lock_path(tmp_path / "journal.sqlite3").read_text() == f"{first.pid}\n"
    again = await _start(tmp_path)
    try:
        assert await _stop(again) == 0
    finally:
        if again.returncode is None:
            again.kill()
            await again.wait()
