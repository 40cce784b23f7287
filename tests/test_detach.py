"""A detached engine through the real CLI, on the embedded world (its own moto process):
it outlives its terminal (tmux killed), obeys pause / throttle / resume / stop while a migration
runs, feeds watchers within 1 s, refuses other users, and a dead engine's socket is reported
and the run resumes. No sleeps as waits: every wait polls an observable condition."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from engine.control.client import RemoteEngine, WatchMessage
from engine.control.paths import socket_path
from engine.embedded import record_path_for, stop_world
from engine.journal import JournalStore
from engine.lock import is_locked

RUNBOOK = Path(__file__).parent / "data" / "detach-runbook.toml"
MIGRATE = "migrate-expenses"
TABLE = "dt-legacy-expenses"


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


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


@pytest.fixture
def journal(tmp_path: Path):
    path = tmp_path / "j.toml"
    yield path
    for pid in _engine_pids(path):
        os.kill(pid, signal.SIGKILL)
    stop_world(record_path_for(path))


def _engine_pids(journal: Path) -> list[int]:
    out = subprocess.run(["pgrep", "-f", f"--journal {journal} "], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split() if int(p) != os.getpid()]


def common(journal: Path) -> list[str]:
    return ["--runbook", str(RUNBOOK), "--journal", str(journal)]


def start_detached(journal: Path) -> int:
    done = cli("run", "--detach", "--yes", *common(journal))
    assert done.returncode == 0, done.stderr
    assert "control socket" in done.stdout
    pid = int(re.search(r"engine started: pid (\d+)", done.stdout).group(1))
    assert alive(pid) and is_locked(journal) is not None
    return pid


def test_detached_engine_outlives_its_terminal_and_finishes_the_migration(journal: Path):
    """Started in tmux; the tmux session is killed (SIGHUP to everything in that terminal); the
    engine, in its own session, goes on and finishes the migrate step."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    out = journal.with_name("terminal.out")
    server = f"detach-{os.getpid()}"
    command = (
        f"{shlex.quote(sys.executable)} -m engine.cli run --detach --yes "
        f"{' '.join(shlex.quote(a) for a in common(journal))} > {out} 2>&1; "
        f"echo rc=$? >> {out}; cat"  # the terminal stays open until it is killed
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    tmux = ["tmux", "-L", server]
    subprocess.run([*tmux, "new-session", "-d", "-s", "war-room", command], check=True, env=env)
    try:
        until(lambda: out.exists() and "rc=" in out.read_text(), 90, "the detach to return")
        text = out.read_text()
        assert "rc=0" in text, text
        pid = int(re.search(r"engine started: pid (\d+)", text).group(1))
        # slow it down so it is surely mid-step when the terminal goes
        assert cli("throttle", "--rate", "150", *common(journal)).returncode == 0
        until(lambda: step(journal, MIGRATE)[0] == "running", 30, "the migration to start")
        shell_pid = int(
            subprocess.run(
                [*tmux, "list-panes", "-t", "war-room", "-F", "#{pane_pid}"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()[0]
        )
        subprocess.run([*tmux, "kill-server"], check=True)
        until(lambda: not alive(shell_pid), 10, "the terminal's shell to die of its SIGHUP")
        assert alive(pid), "the detached engine died with its terminal"
        done_before = step(journal, MIGRATE)[1]
        until(lambda: step(journal, MIGRATE)[1] > done_before, 10, "progress after the SIGHUP")

        # stop: a checkpoint, then exit; the step stays resumable; the socket is removed
        remote = RemoteEngine(socket_path(journal))
        seen: list[WatchMessage] = []
        watch = remote.subscribe(seen.append)
        stopped = cli("stop", "--by", "al", *common(journal))
        assert stopped.returncode == 0 and "engine stopped" in stopped.stdout, stopped.stderr
        assert not socket_path(journal).exists()  # removed before it let go of the lock
        until(lambda: not alive(pid), 10, "the engine to exit")
        until(watch.ended.is_set, 5, "the watcher's stream to end")
        assert seen[-1].type == "end" and seen[-1].data["outcome"] == "interrupted", seen[-3:]
        status, done = step(journal, MIGRATE)
        assert status == "running" and 0 < done < 600  # interrupted mid-step, at a checkpoint
        audit = " ".join(a.what for a in JournalStore(journal).load().audit)
        assert "throttle: rate 150" in audit and "stopped the detached engine" in audit

        # a new detached engine resumes from that checkpoint and finishes the step
        pid = start_detached(journal)
        until(lambda: step(journal, MIGRATE)[0] == "done", 60, "the migrate step to finish")
        until(lambda: not alive(pid), 20, "the engine to exit once every step is done")
        assert is_locked(journal) is None
        assert not socket_path(journal).exists()  # it removed its socket on the way out
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)


def test_pause_throttle_resume_watch_then_a_dead_engines_socket(journal: Path):
    pid = start_detached(journal)
    args = common(journal)
    assert cli("throttle", "--rate", "150", *args).returncode == 0
    until(lambda: step(journal, MIGRATE)[0] == "running", 30, "the migration to start")

    # a watcher sees progress within 1 s, and keeps seeing it at least every second
    remote = RemoteEngine(socket_path(journal))
    seen: list[tuple[float, WatchMessage]] = []
    subscribed = time.time()  # wall clock: comparable with the engine's `at` on this host
    watch = remote.subscribe(lambda m: seen.append((time.time(), m)))
    progress = lambda: [(t, m.data) for t, m in seen if m.type == "progress"]  # noqa: E731
    until(lambda: len(progress()) >= 4, 10, "four progress messages")
    assert progress()[0][0] - subscribed < 1.0
    # each reached the watcher within 1 s of the engine announcing it (same host clock)
    lags = [received - data["at"] for received, data in progress()]
    assert max(lags) < 1.0, lags
    assert any(m.type == "status" for _, m in seen) and any(m.type == "control" for _, m in seen)

    # pause: the run stands at a checkpoint boundary; progress stops; status says so
    paused = cli("pause", "--by", "al", *args)
    assert paused.returncode == 0 and "pausing" in paused.stdout
    until(lambda: remote.status()["control"]["pause"] == "paused", 10, "the pause to hold")
    held_at = step(journal, MIGRATE)[1]
    assert "PAUSED" in cli("status", *args).stdout
    until(
        lambda: any(m.type == "control" and m.data["pause"] == "paused" for _, m in seen),
        2,
        "the watcher to see the pause",
    )
    window = time.monotonic() + 1.5  # an assertion over a window: nothing moves while paused
    while time.monotonic() < window:
        assert step(journal, MIGRATE) in (("running", held_at), ("?", -1))
        assert remote.status()["status"]["steps"][1]["progress"][TABLE]["done"] == held_at
    # throttle while paused, then resume: progress goes on
    throttled = cli("throttle", "--rate", "50", "--in-flight", "4", *args)
    assert throttled.returncode == 0 and "rate 50 items/s" in throttled.stdout
    assert remote.status()["control"]["throttle"]["in_flight"] == 4
    assert cli("resume", *args).returncode == 0
    until(lambda: step(journal, MIGRATE)[1] > held_at, 10, "progress after resume")

    audit = " ".join(a.what for a in JournalStore(journal).load().audit)
    assert "paused the run" in audit and "throttle: rate 50" in audit

    # a dead engine: SIGKILL leaves its socket; the next runbook says so and resumes
    os.kill(pid, signal.SIGKILL)
    until(lambda: is_locked(journal) is None, 10, "the kernel to free the lock")
    until(watch.ended.is_set, 5, "the watcher's stream to end")
    assert not any(m.type == "end" for _, m in seen)  # it died: it could not say goodbye
    assert socket_path(journal).exists()
    resumed = cli("run", "--yes", *args)
    assert resumed.returncode == 0, resumed.stderr
    first = resumed.stderr.splitlines()[0]
    assert f"the detached engine (pid {pid}) is gone" in first and "resuming now" in first
    assert not socket_path(journal).exists()
    assert step(journal, MIGRATE) == ("done", 600)
    assert cli("pause", *args).returncode == 2  # no engine now: one line, exit 2


def test_another_user_is_refused(journal: Path, tmp_path: Path):
    """Real other uid (nobody, through setpriv): the 0700 folder stops it; with the folder and
    socket opened up on purpose, the engine's own peer-uid check (SO_PEERCRED) refuses it."""
    if os.getuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to act as another user")
    place = Path(tempfile.mkdtemp(prefix="dt-", dir="/tmp"))
    os.chmod(place, 0o711)
    other_journal = place / "j.toml"
    try:
        pid = start_detached(other_journal)
        sock = socket_path(other_journal)
        assert (os.stat(sock.parent).st_mode & 0o777, os.stat(sock).st_mode & 0o777) == (
            0o700,
            0o600,
        )
        client = (
            "import json,socket,sys\n"
            "s=socket.socket(socket.AF_UNIX)\n"
            "try:\n"
            f"    s.connect({str(sock)!r})\n"
            "except OSError as e:\n"
            "    print('connect-error', e.errno); sys.exit(0)\n"
            's.sendall(b\'{"cmd":"status"}\\n\')\n'
            "print(s.makefile().readline())\n"
        )
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
        run = lambda: subprocess.run(  # noqa: E731
            [*as_nobody, "/usr/bin/python3", "-c", client], capture_output=True, text=True
        )
        assert run().stdout.split() == ["connect-error", "13"]  # EACCES: the folder is 0700
        os.chmod(sock.parent, 0o711)
        os.chmod(sock, 0o666)
        answer = json.loads(run().stdout)
        assert answer["ok"] is False and answer["code"] == 4
        assert "uid 65534 is not the engine's user" in answer["error"]
        assert RemoteEngine(sock).status()["control"]["pid"] == pid  # its own user: served
        assert cli("stop", *common(other_journal)).returncode == 0
    finally:
        for stray in _engine_pids(other_journal):
            os.kill(stray, signal.SIGKILL)
        stop_world(record_path_for(other_journal))
        shutil.rmtree(place, ignore_errors=True)
