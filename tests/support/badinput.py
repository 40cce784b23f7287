"""Bad input through the real CLI in its own process: the CLI call, a folder's fingerprint, the
ways a journal copy is broken, a held embedded server."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.paths import MINI_RUNBOOK

MINI_TEXT = MINI_RUNBOOK.read_text()


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, **kw
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        capture_output=True,
        text=True,
        env=env or os.environ.copy(),
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        **kw,
    )


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` (but the .log, where tracebacks go) -> sha256 of its bytes."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.suffix != ".log":
            out[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def fifo(journal: Path) -> None:
    journal.unlink()
    os.mkfifo(journal)


def lock_folder(journal: Path) -> None:
    lock = journal.with_name(journal.name + ".lock")
    lock.unlink(missing_ok=True)
    lock.mkdir()


def mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir()
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                        capture_output=True).returncode == 0  # fmt: skip
    return ok


HELD_SERVER = """\
import os, threading
if b"engine.rehearsal.moto_process" in open("/proc/self/cmdline", "rb").read():
    marker = os.environ["RUNBOOK_TEST_HELD_SERVER"]
    with open(marker + ".tmp", "w") as out:
        out.write(str(os.getpid()))
    os.rename(marker + ".tmp", marker)
    threading.Event().wait()  # never serves: the start waits until it is interrupted
"""


def held_start(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose embedded moto server starts, says so (its pid in the returned
    marker file) and never serves: the world's start cannot finish, however fast or loaded the
    machine, so a Ctrl-C always lands during it."""
    hook = tmp_path / "held-server"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HELD_SERVER)
    marker = tmp_path / "held-server.pid"
    path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH", "")) if p)
    env = {
        **os.environ,
        "XDG_STATE_HOME": str(tmp_path / "xdg"),
        "PYTHONPATH": path,
        "RUNBOOK_TEST_HELD_SERVER": str(marker),
    }
    return env, marker


def held_server_pid(marker: Path, proc: subprocess.Popen[Any]) -> int:
    """The held server's pid, once it has started (the driver's start waits on it)."""
    deadline = time.monotonic() + 120
    while not marker.exists():  # the condition stays true once met: no race with the start
        assert proc.poll() is None, "the command ended before its server started"
        assert time.monotonic() < deadline, "the embedded server never started"
        time.sleep(0.02)
    return int(marker.read_text())


def is_gone(pid: int) -> bool:
    """The driver kills and reaps its server: its pid is free (or not a moto server)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"engine.rehearsal.moto_process" not in cmd
