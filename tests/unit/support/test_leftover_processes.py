"""The suite's own check: a process a test leaves alive fails the run, naming that test, and is
killed (tests/support/processes.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

LEAKY = """
import subprocess, sys

def test_starts_a_server_and_forgets_it():
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])

def test_tidy():
    subprocess.run([sys.executable, "-c", "pass"], check=True)
"""


def test_a_process_left_alive_fails_the_run_naming_its_test(tmp_path: Path) -> None:
    (tmp_path / "test_leaky.py").write_text(LEAKY)
    env = {**os.environ, "PYTHONPATH": str(REPO), "RUNBOOK_TEST_GRACE_SECONDS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", "/dev/null",
         "-p", "tests.support.processes", str(tmp_path / "test_leaky.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout
    assert "processes the suite started are still alive" in done.stdout
    # the first mention (under CI=true pytest repeats the whole message in its summary)
    line = next(x for x in done.stdout.splitlines() if "time.sleep(300)" in x and "started by" in x)
    assert line.rstrip().endswith("::test_starts_a_server_and_forgets_it")
    assert "2 passed, 1 error" in done.stdout
    pid = int(line.split("pid ", 1)[1].split()[0])
    assert (
        not Path(f"/proc/{pid}").exists()
        or b"sleep(300)" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    ), "the leaked process was not killed"
