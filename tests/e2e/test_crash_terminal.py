"""A lost terminal interrupts a run; it never fails it. SIGHUP (a tmux session or SSH link
killed), EIO on a write, EPIPE on stdout: the step is checkpointed and left interrupted (exit
130), and the next `runbook run` finishes it. `plan | head` and `status | head` end quietly."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.plan.loader import load_runbook
from engine.state.journal import JournalStore
from engine.state.lock import is_locked
from tests.support.paths import MINI_RUNBOOK
from tests.support.terminal import Terminal
from tests.support.world import seed_endpoint

PYTHON = shlex.quote(sys.executable)


def _slow_mini(tmp_path: Path) -> Path:
    """The mini runbook with 3 s between tables, so a kill lands mid-step."""
    text = MINI_RUNBOOK.read_text().replace("pause_seconds = 0.4", "pause_seconds = 3")
    path = tmp_path / "mini-slow.toml"
    path.write_text(text)
    return path


def _wait(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _backups(journal: Path) -> int:
    try:
        return len(JournalStore(journal).load().steps["backup-tables"].cursors.get("backups", {}))
    except Exception:
        return 0


def _second_run_finishes(runbook: Path, endpoint: str, journal: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "run", "--yes", "--runbook", str(runbook),
         "--endpoint-url", endpoint, "--journal", str(journal)],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr  # on to the gate: the step is done
    state = JournalStore(journal).load().steps["backup-tables"]
    assert state.status == "done" and len(state.cursors["backups"]) == 3


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_killing_the_tmux_session_interrupts_the_step(moto_endpoint: str, tmp_path: Path) -> None:
    runbook = _slow_mini(tmp_path)
    seed_endpoint(moto_endpoint, load_runbook(runbook).runbook)
    journal = tmp_path / "j.toml"
    term = Terminal("rb-hup")
    command = (
        f"cd {shlex.quote(os.getcwd())} && {PYTHON} -m engine.cli run --yes --time-scale 60 "
        f"--runbook {runbook} --endpoint-url {moto_endpoint} --journal {journal}"
    )
    term.start(command, env={**os.environ, "TERM": "xterm"})
    try:
        _wait(lambda: _backups(journal) >= 1, 60, "the backup step never started")
    finally:
        term.close()
    _wait(lambda: is_locked(journal) is None, 10, "the run did not stop after the hang-up")
    saved = JournalStore(journal).load()
    state = saved.steps["backup-tables"]
    assert state.status == "running" and state.error is None  # interrupted, never failed
    assert 1 <= len(state.cursors["backups"]) < 3
    assert any(a.what == "interrupted backup-tables" for a in saved.audit)
    assert "[backup-tables] interrupted" in (tmp_path / "j.log").read_text()
    _second_run_finishes(runbook, moto_endpoint, journal)


def test_a_closed_stdout_interrupts_the_run(moto_endpoint: str, tmp_path: Path) -> None:
    """`runbook run --yes | head -1`: the pipe closes under the run; exit 130, step resumable."""
    runbook = _slow_mini(tmp_path)
    seed_endpoint(moto_endpoint, load_runbook(runbook).runbook)
    journal = tmp_path / "j.toml"
    script = (
        f"{PYTHON} -m engine.cli run --yes --runbook {runbook} --endpoint-url {moto_endpoint} "
        f"--journal {journal} 2>{tmp_path / 'err'} | head -1; echo ${{PIPESTATUS[0]}}"
    )
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.stdout.splitlines()[-1] == "130", proc.stdout
    assert "Traceback" not in (tmp_path / "err").read_text()
    state = JournalStore(journal).load().steps["backup-tables"]
    assert state.status == "running" and state.error is None
    _second_run_finishes(runbook, moto_endpoint, journal)


def test_plan_and_status_into_head_end_quietly(moto_endpoint: str, tmp_path: Path) -> None:
    seed_endpoint(moto_endpoint, load_runbook(MINI_RUNBOOK).runbook)
    journal = tmp_path / "j.toml"
    at = f"--runbook {MINI_RUNBOOK} --endpoint-url {moto_endpoint} --journal {journal}"
    subprocess.run(["bash", "-c", f"{PYTHON} -m engine.cli run --yes {at} >/dev/null"],
                   check=False, timeout=120)  # fmt: skip
    for command in (f"plan --runbook {MINI_RUNBOOK}", f"status {at}"):
        script = f"{PYTHON} -m engine.cli {command} | head -1; echo ${{PIPESTATUS[0]}}"
        proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
        assert proc.stdout.splitlines()[-1] == "0", (command, proc.stdout, proc.stderr)
        assert proc.stderr == "", (command, proc.stderr)
