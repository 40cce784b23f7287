"""Where a detached engine listens: `<journal>.control/engine.sock`, a 0600 socket in a 0700
folder beside the journal, and how a socket left by a dead engine is removed safely."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from engine.state.files import DIR_MODE, UnsafePath, private_dir

SOCKET_NAME = "engine.sock"
SOCKET_MODE = 0o600
# sun_path holds 108 bytes with its closing NUL
MAX_SOCKET_PATH = 107


class SocketPathTooLong(Exception):
    """The journal lies too deep for a Unix socket path."""


def control_dir(journal_path: Path) -> Path:
    return journal_path.with_name(journal_path.name + ".control")


def socket_path(journal_path: Path) -> Path:
    path = control_dir(journal_path) / SOCKET_NAME
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise SocketPathTooLong(
            f"the control socket {path} would be longer than {MAX_SOCKET_PATH} bytes; "
            "put the journal on a shorter path (--journal)"
        )
    return path


def prepare_dir(journal_path: Path) -> Path:
    """The control folder, 0700 and ours (a folder someone else made is refused)."""
    folder = private_dir(control_dir(journal_path))
    info = os.lstat(folder)
    if info.st_uid != os.getuid():
        raise UnsafePath(f"{folder} belongs to uid {info.st_uid}, not to you; refusing it")
    os.chmod(folder, DIR_MODE)
    return folder


def remove_stale(path: Path) -> bool:
    """Remove a socket left behind; only a socket of ours, never a symlink or a file."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(info.st_mode) or info.st_uid != os.getuid():
        raise UnsafePath(f"{path} is not a control socket of yours; refusing to remove it")
    path.unlink(missing_ok=True)
    return True
