"""One driver per journal: an OS lock on `<journal>.lock`, with the holder's identity inside.

The kernel releases a flock when its holder dies, so a lock left by a dead process is simply
taken over; the stale holder info is overwritten.
"""

from __future__ import annotations

import fcntl
import getpass
import os
import socket
import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from engine.state.files import DIR_MODE, open_private, read_regular
from engine.state.journal import utcnow


@dataclass(frozen=True)
class Holder:
    user: str
    host: str
    pid: int
    since: str
    operation: str

    def describe(self) -> str:
        return (
            f"{self.user}@{self.host} (pid {self.pid}) since {self.since}, "
            f"running '{self.operation}'"
        )


class LockedError(Exception):
    def __init__(self, path: Path | str, holder: Holder | None) -> None:
        self.path = path
        self.holder = holder
        who = holder.describe() if holder else "an unknown process"
        super().__init__(f"journal is locked by {who} (lock file {path})")


def lock_path_for(journal_path: Path) -> Path:
    return journal_path.with_name(journal_path.name + ".lock")


def read_holder(lock_path: Path) -> Holder | None:
    try:
        data = tomllib.loads(read_regular(lock_path).decode("utf-8", "replace"))
        return Holder(**data)
    except (OSError, tomllib.TOMLDecodeError, TypeError):
        return None


def is_locked(journal_path: Path) -> Holder | None:
    """The current holder, or None when nobody drives this journal."""
    path = lock_path_for(journal_path)
    if not path.exists():
        return None
    try:
        fd = open_private(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return read_holder(path) or Holder("?", "?", 0, "?", "?")
    finally:
        os.close(fd)
    return None


def _names_inode(path: Path, fd: int) -> bool:
    """Whether `path` still names the file `fd` has open (a deleted lock file does not)."""
    try:
        on_disk = os.lstat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


class JournalLock:
    """Held for the lifetime of a driving process."""

    def __init__(self, journal_path: Path, operation: str) -> None:
        self.path = lock_path_for(journal_path)
        self.operation = operation
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        for _ in range(10):
            fd = open_private(self.path, os.O_RDWR | os.O_CREAT)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise LockedError(self.path, read_holder(self.path)) from None
            if _names_inode(self.path, fd):
                break
            # the file was deleted or replaced between open and flock: that lock guards
            # nothing; take the one the path names now
            os.close(fd)
        else:
            raise LockedError(self.path, read_holder(self.path))
        holder = {
            "user": getpass.getuser(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": utcnow(),
            "operation": self.operation,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, tomli_w.dumps(holder).encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def still_held(self) -> bool:
        """Whether the lock path still names the file this process locked. Someone deleting
        or replacing it would let a second driver in: the holder must stop writing."""
        return self._fd is not None and _names_inode(self.path, self._fd)

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> JournalLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
