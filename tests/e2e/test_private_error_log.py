"""Issue 20, item 8: when the journal's folder cannot be written, the traceback goes to a
private per-user folder (`$TMPDIR/runbook-console-<uid>/errors.log`, 0700/0600), never into a
file somebody else made first."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MINI_RUNBOOK = REPO / "tests" / "data" / "mini-runbook.toml"
NOBODY = 65534


def failing_run(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`run` with a journal under a file: the folder cannot be made, nor its .log written."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "XDG_STATE_HOME": str(tmp_path / "x")}
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "run", "--runbook", str(MINI_RUNBOOK),
         "--endpoint-url", "http://127.0.0.1:9", "--journal", str(blocker / "j.toml")],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_the_traceback_goes_to_a_private_folder_of_this_user(tmp_path: Path) -> None:
    done = failing_run(tmp_path)
    assert done.returncode == 2, done.stderr
    log = tmp_path / "tmp" / f"runbook-console-{os.getuid()}" / "errors.log"
    assert f"(details in {log})" in done.stderr
    assert "Traceback" in log.read_text() and "Traceback" not in done.stderr
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="making another user's files needs root")
def test_a_file_another_user_planted_is_never_written(tmp_path: Path) -> None:
    folder = tmp_path / "tmp" / f"runbook-console-{os.getuid()}"
    folder.mkdir(parents=True)
    planted = folder / "errors.log"
    planted.write_text("")
    for path, mode in ((folder, 0o777), (planted, 0o666)):
        os.chown(path, NOBODY, NOBODY)
        path.chmod(mode)
    done = failing_run(tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "details in" not in done.stderr
    assert planted.read_text() == ""  # nothing of the run leaked into it
