"""Files beside the journal: never follow a symlink, create files 0600 and folders 0700.

The journal's neighbours (lock, log, artifacts with full item copies, the embedded server's log)
are read by nobody but the operator; a symlink planted there must not redirect a write.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


class UnsafePath(OSError):
    """A path beside the journal is a symlink, or not the kind of file expected."""


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) as 0700 folders; refuse a symlink or a non-folder."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise UnsafePath(f"{path} is a symlink; refusing to use it")
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafePath(f"{path} is not a folder")
    return path


def open_private(path: Path, flags: int) -> int:
    """os.open without following a symlink; a new file is 0600. Refuses non-regular files
    (a FIFO would block, a folder cannot be written)."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, FILE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # the last component is a symlink
            raise UnsafePath(f"{path} is a symlink; refusing to follow it") from exc
        if exc.errno == errno.EISDIR:
            raise UnsafePath(f"{path} is a folder, not a file") from exc
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise UnsafePath(f"{path} is not a regular file")
    os.set_blocking(fd, True)
    return fd


def append_private(path: Path, text: str) -> None:
    """Append to a 0600 file without following a symlink (the `.log` beside the journal)."""
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    fd = open_private(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def append_owned(path: Path, text: str) -> None:
    """Append to a 0600 file in a 0700 folder that this user owns, never into one somebody
    else made first (a shared /tmp: a file created 0666 by another user would leak the run)."""
    folder = private_dir(path.parent)
    uid = os.getuid()
    info = os.lstat(folder)
    if info.st_uid != uid or info.st_mode & 0o077:
        raise UnsafePath(f"{folder} is not a private folder of this user; not writing there")
    fd = open_private(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        info = os.fstat(fd)
        if info.st_uid != uid or info.st_mode & 0o077:
            raise UnsafePath(f"{path} is not a private file of this user; not writing there")
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def private_error_log() -> Path:
    """The last place a traceback can go when the journal's folder cannot be written: a
    per-user folder in the temporary directory (`runbook-console-<uid>/errors.log`)."""
    return Path(tempfile.gettempdir()) / f"runbook-console-{os.getuid()}" / "errors.log"


def no_symlink(path: Path) -> Path:
    """`path`, refusing it when a symlink sits there (files are then created by their users
    under the process umask 077 the CLI sets)."""
    if path.is_symlink():
        raise UnsafePath(f"{path} is a symlink; refusing to follow it")
    return path


def read_regular(path: Path) -> bytes:
    """Read a file that must be a regular file (a FIFO as the journal must not hang us)."""
    fd = open_private(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def inside(folder: Path, name: str) -> Path:
    """`folder/name`, refusing any name that resolves outside `folder` (ids like x/../../y)."""
    candidate = (folder / name).resolve()
    if not candidate.is_relative_to(folder.resolve()) or candidate == folder.resolve():
        raise UnsafePath(f"artifact name {name!r} leaves the artifacts folder {folder}")
    return folder / name
