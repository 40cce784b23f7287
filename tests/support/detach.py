"""A detached engine through the real CLI: its runbook, polling for a condition, its pids and the
journal's view of a step."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

from engine.cli.app import main
from engine.control.client import RemoteEngine
from engine.session.detach import CHILD_FLAG
from engine.state.journal import JournalStore
from engine.state.lock import is_locked
from tests.support.paths import DETACH_RUNBOOK

RUNBOOK = DETACH_RUNBOOK


MIGRATE = "migrate-expenses"


TABLE = "dt-legacy-expenses"


def runbook(capsys, *args: str) -> tuple[int, str, str]:
    """The CLI in this process (no interpreter start per command): (exit code, out, err)."""
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def until(condition, seconds: float = 30.0, what: str = "condition"):
    """Poll an observable condition with a deadline; returns its first truthy value."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has exited


def step(journal: Path, step_id: str) -> tuple[str, int]:
    """(status, items done) of a step, as the journal on disk says."""
    try:
        state = JournalStore(journal).load().steps.get(step_id)
    except Exception:  # mid-rename on another process's save: read again
        return ("?", -1)
    if state is None:
        return ("pending", 0)
    progress = state.progress.get(TABLE)
    return (state.status, progress.done if progress else 0)


def live_table(remote: RemoteEngine) -> dict:
    """The migrate step's table progress, as the running engine itself says (its snapshot)."""
    snapshot = remote.status().snapshot.model_dump(mode="json")
    step_view = next(s for s in snapshot["steps"] if s["id"] == MIGRATE)
    return next(t for t in step_view["progress"] if t["table"] == TABLE)


def live_done(remote: RemoteEngine) -> int:
    return live_table(remote)["done"]


def engine_pids(journal: Path) -> list[int]:
    pattern = f"--journal {journal} {CHILD_FLAG}"  # after `--`: a pattern, not an option
    out = subprocess.run(["pgrep", "-f", "--", pattern], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split() if int(p) != os.getpid()]


def common(journal: Path) -> list[str]:
    return ["--runbook", str(RUNBOOK), "--journal", str(journal)]


def start_detached(capsys, journal: Path, *flags: str) -> int:
    code, out, err = runbook(capsys, "run", "--detach", "--yes", *flags, *common(journal))
    assert code == 0, err
    assert "control socket" in out
    pid = int(re.search(r"engine started: pid (\d+)", out).group(1))
    assert alive(pid) and is_locked(journal) is not None
    return pid


def last_status(remote: RemoteEngine) -> str | None:
    """How the detached engine's last job ended, as it says (None: none has yet)."""
    last = remote.status().control.last
    return last.status if last else None
