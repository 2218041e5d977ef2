"""Broken files through the installed `tradebot run` (issue 8, item 8): one line naming the
file and what is wrong, exit 2, within seconds, and the file left byte for byte as it was.

Read-only places: tests often run as root, and root ignores permission bits, so a folder is
made read-only by a read-only bind mount of it in a private mount namespace
(`unshare -rm`, then `mount -o remount,bind,ro`); `tradebot` runs inside that namespace.
Without unshare, a non-root user gets chmod 555 instead; root without unshare skips.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.instance_lock import lock_path
from engine.journal import Journal
from engine.journal_rows import SCHEMA_VERSION
from tests.tradebot_script import Result, clean_env, digest, run_tradebot

QUICK = 5.0  # seconds, start-up of the interpreter on a busy machine included

_BIND_READ_ONLY = (
    'folder="$1"; shift; mount --bind "$folder" "$folder" '
    '&& mount -o remount,bind,ro "$folder" "$folder" || exit 97; exec "$@"'
)


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", _BIND_READ_ONLY, "sh", "/tmp", "true"],
        capture_output=True, timeout=10,
    )  # fmt: skip
    return probe.returncode == 0


ReadOnly = Callable[[Path], tuple[str, ...]]


@pytest.fixture(scope="module")
def read_only() -> Iterator[ReadOnly]:
    """`read_only(folder)` gives the prefix that runs a command with `folder` read-only."""
    if _unshare_works():
        yield lambda folder: ("unshare", "-rm", "sh", "-c", _BIND_READ_ONLY, "sh", str(folder))
        return
    if os.geteuid() == 0:
        pytest.skip("root ignores chmod, and unshare/mount is not allowed here")
    changed: list[Path] = []

    def chmod(folder: Path) -> tuple[str, ...]:
        folder.chmod(0o555)
        changed.append(folder)
        return ()

    yield chmod
    for folder in changed:
        folder.chmod(0o755)


def _run(tmp_path: Path, db: Path | str, logs: Path | None = None, **kw: object) -> Result:
    env = clean_env(DB_PATH=str(db), LOG_DIR=str(logs or tmp_path / "logs"), SIM_SPEED="60")
    return run_tradebot("run", cwd=tmp_path, env=env, **kw)  # type: ignore[arg-type]


def _one_line(result: Result, expected: str) -> None:
    assert result.code == 2, result.stderr
    assert result.lines == [expected], result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.seconds < QUICK


def _journal(path: Path) -> Path:
    async def create() -> None:
        journal = await Journal.open(path)
        await journal.close()

    asyncio.run(create())
    return path


def test_corrupt_journal(tmp_path: Path) -> None:
    db = tmp_path / "journal.sqlite3"
    db.write_bytes(random.Random(8).randbytes(32_768))
    before = digest(db)
    result = _run(tmp_path, db)
    _one_line(result, f"tradebot: DB_PATH: {db} is not a tradebot journal (file is not a "
                      "database); move it away or point DB_PATH elsewhere")  # fmt: skip
    assert digest(db) == before


def test_journal_command_on_a_corrupt_journal(tmp_path: Path) -> None:
    db = tmp_path / "journal.sqlite3"
    db.write_bytes(random.Random(9).randbytes(8_192))
    before = digest(db)
    env = clean_env(DB_PATH=str(db))
    result = run_tradebot("journal", cwd=tmp_path, env=env, timeout=10)
    _one_line(result, f"tradebot: DB_PATH: {db} is not a tradebot journal (file is not a "
                      "database); move it away or point DB_PATH elsewhere")  # fmt: skip
    assert digest(db) == before


def test_journal_from_a_newer_tradebot(tmp_path: Path) -> None:
    db = tmp_path / "journal.sqlite3"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE future (x)")
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    before = digest(db)
    result = _run(tmp_path, db)
    _one_line(
        result,
        f"tradebot: DB_PATH: {db} has journal schema {SCHEMA_VERSION + 1}, newer than this "
        f"tradebot's ({SCHEMA_VERSION}); upgrade tradebot or point DB_PATH elsewhere",
    )
    assert digest(db) == before


def test_existing_journal_on_a_read_only_filesystem(tmp_path: Path, read_only: ReadOnly) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    db = _journal(folder / "journal.sqlite3")
    before = digest(db)
    result = _run(tmp_path, db, prefix=read_only(folder))
    assert result.code == 2 and len(result.lines) == 1, result.stderr
    assert result.lines[0].startswith(f"tradebot: DB_PATH: cannot create {lock_path(db)} in ")
    assert "Traceback" not in result.stderr and result.seconds < QUICK
    assert digest(db) == before


def test_existing_journal_and_lock_on_a_read_only_filesystem(
    tmp_path: Path, read_only: ReadOnly
) -> None:
    """The lock can be taken read-only; the journal then cannot be opened for writing, and its
    connection must be closed (it used to hang the process until signalled)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    db = _journal(folder / "journal.sqlite3")
    lock_path(db).touch()
    before = digest(db)
    result = _run(tmp_path, db, prefix=read_only(folder), timeout=10)
    assert result.code == 2 and len(result.lines) == 1, result.stderr
    assert result.lines[0].startswith(f"tradebot: DB_PATH: cannot write the journal {db} (")
    assert result.lines[0].endswith("the file and its folder must be writable")
    assert "Traceback" not in result.stderr and result.seconds < QUICK
    assert digest(db) == before


def test_new_journal_in_a_read_only_folder(tmp_path: Path, read_only: ReadOnly) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    result = _run(tmp_path, folder / "journal.sqlite3", prefix=read_only(folder))
    assert result.code == 2 and len(result.lines) == 1, result.stderr
    assert result.lines[0].startswith(
        f"tradebot: DB_PATH: cannot create {folder / 'journal.sqlite3.lock'} in {folder} ("
    )
    assert "Traceback" not in result.stderr and result.seconds < QUICK
    assert list(folder.iterdir()) == []


def test_journal_under_a_regular_file(tmp_path: Path) -> None:
    blocker = tmp_path / "somefile"
    blocker.write_text("not a folder\n")
    before = digest(blocker)
    result = _run(tmp_path, "somefile/x.sqlite3")
    _one_line(result, "tradebot: DB_PATH: cannot create the folder somefile (a part of the "
                      "path is a file, not a folder)")  # fmt: skip
    assert digest(blocker) == before


@pytest.mark.parametrize("value", ["", "  ", "."])
def test_journal_path_empty_or_a_folder(tmp_path: Path, value: str) -> None:
    result = _run(tmp_path, value)
    _one_line(
        result,
        "tradebot: DB_PATH: expected the journal's file name, e.g. tradebot.sqlite3 (not "
        f"empty, not a folder), got {value!r}",
    )
    assert list(tmp_path.iterdir()) == []


def test_log_dir_read_only(tmp_path: Path, read_only: ReadOnly) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    result = _run(tmp_path, tmp_path / "journal.sqlite3", logs, prefix=read_only(logs))
    assert result.code == 2 and len(result.lines) == 1, result.stderr
    assert result.lines[0].startswith(
        f"tradebot: LOG_DIR: cannot write the log file {logs / 'tradebot.log'} ("
    )
    assert result.lines[0].endswith("LOG_DIR must be a writable folder")
    assert "Traceback" not in result.stderr and result.seconds < QUICK
    assert list(logs.iterdir()) == []


def test_log_dir_a_regular_file(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.write_text("not a folder\n")
    before = digest(logs)
    result = _run(tmp_path, tmp_path / "journal.sqlite3", logs)
    _one_line(result, f"tradebot: LOG_DIR: cannot write the log file {logs / 'tradebot.log'} "
                      "(a part of the path is a file, not a folder); LOG_DIR must be a "
                      "writable folder")  # fmt: skip
    assert digest(logs) == before


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"format": 1, "clock": 17\x00\xff', "not a valid state file (corrupt JSON)"),
        (b"[1, 2, 3]", "unsupported state file format None (expected 1)"),
        (b'{"format": 99, "clock": 0}', "unsupported state file format 99 (expected 1)"),
        (b'{"format": 1, "clock": "noon"}', "the state file has no valid clock"),
        (
            b'{"format": 1, "clock": 1700000000, "accounts": [{"name": "DU1234567"}]}',
            "not a state this simulator wrote (KeyError: 'cash')",
        ),
    ],
)
def test_corrupt_simulated_gateway_state_file(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    db = tmp_path / "journal.sqlite3"
    state = tmp_path / "journal.sqlite3.ibsim.json"
    state.write_bytes(content)
    result = _run(tmp_path, db)
    assert result.code == 2, result.stderr
    (line,) = result.lines
    assert line.startswith(f"tradebot: {state}: {problem}"), line
    assert "Traceback" not in result.stdout + result.stderr and result.seconds < QUICK
    assert state.read_bytes() == content
