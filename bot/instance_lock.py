"""One `tradebot run` per journal: an exclusive lock on `<DB_PATH>.lock`, held for the process's
life and released by the kernel when it ends, however it ends (kill -9 leaves no stale lock).

The journal file itself is flock(2)ed too, so a second name of the same file (a hard link, a
bind mount) finds it locked. flock and SQLite's own POSIX record locks are independent on Linux;
the lock file exists beside it because it holds the owner's process id, for the message the
second instance prints.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path

from engine.errors import ConfigurationError


def lock_path(db_path: Path) -> Path:
    """`<DB_PATH>.lock` beside the journal's real file, so every name of one journal (relative,
    absolute, through a symlink) finds the same lock."""
    real = Path(os.path.realpath(db_path))
    return real.with_name(real.name + ".lock")


class InstanceLock:
    """`acquire()` or ConfigurationError naming DB_PATH (and the running process, if any)."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.path = lock_path(db_path)
        self._fd: int | None = None
        self._journal_fd: int | None = None

    def acquire(self) -> None:
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_pid(fd)
            os.close(fd)
            running = f"process {owner}" if owner else "another process"
            raise ConfigurationError(
                f"DB_PATH: {self.db_path} is in use by another tradebot ({running}); stop it "
                "first, or give this one its own DB_PATH"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise ConfigurationError(
                f"DB_PATH: cannot lock {self.path} ({exc.strerror})"
            ) from None
        self._fd = fd
        _write_pid(fd)
        self._lock_journal()

    def _lock_journal(self) -> None:
        """Lock the journal's inode (created empty if missing: SQLite takes an empty file for
        an empty database). A path that cannot be opened is left to the journal to report."""
        try:
            fd = os.open(self.db_path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            self.release()
            raise ConfigurationError(
                f"DB_PATH: {self.db_path} is in use by another tradebot (under another name of "
                "the same file); stop it first, or give this one its own DB_PATH"
            ) from None
        except OSError:
            os.close(fd)
            return
        self._journal_fd = fd

    def release(self) -> None:
        """Unlock. The file stays: removing it could let a starting process lock a file that
        is no longer the one the next process opens."""
        if self._journal_fd is not None:
            os.close(self._journal_fd)
            self._journal_fd = None
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _open(self) -> int:
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"DB_PATH: cannot create the folder {self.db_path.parent} ({_reason(exc)})"
            ) from None
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.EACCES) and self.path.exists():
                # A read-only lock still excludes a second instance; the journal then says
                # what is wrong with the folder.
                with contextlib.suppress(OSError):
                    return os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            raise ConfigurationError(
                f"DB_PATH: cannot create {self.path} in {folder} ({_reason(exc)}); the journal's "
                "folder must be writable"
            ) from None


def _reason(exc: OSError) -> str:
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return "a part of the path is a file, not a folder"
    return exc.strerror or str(exc)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _write_pid(fd: int) -> None:
    # Best effort: a lock opened read-only still locks, it only cannot say who holds it.
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
