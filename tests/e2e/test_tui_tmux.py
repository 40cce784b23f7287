"""The console in a real terminal: tmux at 80x24, keys sent, the screen read back."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest

from engine.rehearsal.embedded import reconnect, record_path_for, stop_world
from engine.state.lock import is_locked
from engine.state.s3_location import parse_s3_url
from tests.support.paths import MINI_RUNBOOK
from tests.support.terminal import Terminal

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def test_console_starts_shows_timeline_and_quits(tmp_path: Path) -> None:
    term = Terminal("runbook-test")
    state = tmp_path / "state"
    journal = state / "runbook-console" / "mini--embedded.toml"
    command = (
        f"XDG_STATE_HOME={state} TEXTUAL_ANIMATIONS=none {sys.executable} -m runbook_entry "
        f"--runbook {MINI_RUNBOOK}; echo EXITED=$?; sleep 30"
    )
    term.start(command)
    try:
        screen = term.wait_for("Run/resume")
        assert "GATE gate-phase2" in screen and "Day 1" in screen
        assert "READY · next step backup-tables" in screen
        term.keys("r")
        term.wait_for("WAITING at gate gate-phase2")
        assert "✔ 09:00 backup-tables" in term.screen()
        term.keys("q")
        term.wait_for("EXITED=0")
        assert is_locked(journal) is None
        # again on the same journal: the greeting; then the terminal goes away (SIGHUP)
        term.close()
        term.start(command)
        screen = term.wait_for("Welcome back")
        assert "Run started by" in screen and "gate gate-phase2" in screen
        assert is_locked(journal) is not None
        term.close()
        deadline = time.monotonic() + 10
        while is_locked(journal) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert is_locked(journal) is None  # the console left and let go of the journal
    finally:
        term.close()
        stop_world(record_path_for(journal))


def test_terminal_gone_mid_step_checkpoints_and_resumes(tmp_path: Path) -> None:
    """SIGHUP while backup-tables runs: the step is left `running` at a checkpoint, the lock
    is let go, and the next console greets with the interrupted step and finishes it."""
    import tomllib

    runbook = tmp_path / "slow.toml"
    text = MINI_RUNBOOK.read_text()
    assert "pause_seconds = 0.4" in text
    runbook.write_text(text.replace("pause_seconds = 0.4", "pause_seconds = 2"))
    term = Terminal("runbook-hup")
    state = tmp_path / "state"
    journal = state / "runbook-console" / "mini--embedded.toml"
    command = (
        f"XDG_STATE_HOME={state} TEXTUAL_ANIMATIONS=none {sys.executable} -m runbook_entry "
        f"--runbook {runbook} --accept-runbook-change; sleep 30"
    )

    def step_state() -> dict:
        steps = tomllib.loads(journal.read_text()).get("steps", {})
        return steps.get("backup-tables", {})

    term.start(command)
    try:
        term.wait_for("Run/resume")
        term.keys("r")
        deadline = time.monotonic() + 20
        while not step_state().get("cursors", {}).get("backups") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert step_state()["status"] == "running"
        term.close()  # SIGHUP
        deadline = time.monotonic() + 10
        while is_locked(journal) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert is_locked(journal) is None
        left = step_state()
        assert left["status"] == "running" and left.get("checkpoint_at")
        assert 0 < len(left["cursors"]["backups"]) < 3  # stopped between tables
        term.start(command)
        screen = term.wait_for("Welcome back")
        assert "Step backup-tables was interrupted" in screen
        term.keys("r")  # resume
        term.wait_for("WAITING at gate gate-phase2")
        done = step_state()
        assert done["status"] == "done" and done["attempts"] == 2
        assert len(done["cursors"]["backups"]) == 3
    finally:
        term.close()
        stop_world(record_path_for(journal))


def test_the_console_drives_a_rehearsal_kept_in_s3(tmp_path: Path) -> None:
    """`runbook --journal s3://...` in a real terminal: the console runs to the first gate, every
    checkpoint lands in the world's state bucket, the lock object goes with the console, and a
    second console opened meanwhile watches read-only, naming the driver."""
    url = "s3://console-state/runs/mini.toml"
    state = tmp_path / "state"
    cache = parse_s3_url(url).cache_path(state / "runbook-console")
    command = (
        f"XDG_STATE_HOME={state} TEXTUAL_ANIMATIONS=none {sys.executable} -m runbook_entry "
        f"--runbook {MINI_RUNBOOK} --journal {url}; echo EXITED=$?; sleep 30"
    )
    driver, watcher = Terminal("s3-driver"), Terminal("s3-watcher")
    driver.start(command)
    try:
        driver.wait_for("Run/resume")
        s3 = reconnect(record_path_for(cache))[0].client("s3")
        lock = parse_s3_url(url).lock_key
        assert s3.head_object(Bucket="console-state", Key=lock)  # this console drives
        watcher.start(command)
        seen = watcher.wait_for("READ-ONLY")
        assert "driven by" in seen
        driver.keys("r")
        driver.wait_for("WAITING at gate gate-phase2")
        body = s3.get_object(Bucket="console-state", Key="runs/mini.toml")["Body"].read()
        assert b"[steps.backup-tables]" in body and b'status = "done"' in body
        driver.keys("q")
        driver.wait_for("EXITED=0")
        listed = s3.list_objects_v2(Bucket="console-state", Prefix=lock).get("KeyCount", 0)
        assert listed == 0  # the lock went with the console
    finally:
        watcher.close()
        driver.close()
        stop_world(record_path_for(cache))
