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
from engine.control.job_loop import DetachedRun
from engine.control.paths import socket_path
from engine.control.server import ControlServer
from engine.rehearsal.embedded import record_path_for, stop_world
from engine.state.journal import JournalStore
from engine.state.lock import JournalLock, is_locked
from tests.support.detach import (
    MIGRATE,
    RUNBOOK,
    alive,
    common,
    engine_pids,
    last_status,
    live_done,
    live_table,
    runbook,
    start_detached,
    step,
    until,
)
from tests.support.paths import MINI_RUNBOOK, REPO
from tests.support.world import seeded_engine


@pytest.fixture
def journal(tmp_path: Path):
    path = tmp_path / "j.toml"
    yield path
    for pid in engine_pids(path):
        os.kill(pid, signal.SIGKILL)
    stop_world(record_path_for(path))


def test_detached_engine_outlives_its_terminal_and_finishes_the_migration(capsys, journal):
    """Started in tmux; the tmux server is killed (SIGHUP to everything in that terminal); the
    engine, in its own session, goes on; `stop` checkpoints it; a new one finishes the step."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    args = common(journal)
    out = journal.with_name("terminal.out")
    server = f"detach-{os.getpid()}"
    command = (
        # started throttled: surely mid-step when the terminal goes, however fast the machine
        f"{shlex.quote(sys.executable)} -m engine.cli run --detach --yes --rate 40 "
        f"{' '.join(shlex.quote(a) for a in args)} > {out} 2>&1; "
        f"echo rc=$? >> {out}; cat"  # the terminal stays open until it is killed
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    tmux = ["tmux", "-L", server]
    subprocess.run([*tmux, "new-session", "-d", "-s", "war-room", command], check=True, env=env)
    try:
        until(lambda: out.exists() and "rc=" in out.read_text(), 90, "the detach to return")
        text = out.read_text()
        assert "rc=0" in text, text
        pid = int(re.search(r"engine started: pid (\d+)", text).group(1))
        until(lambda: step(journal, MIGRATE)[0] == "running", 30, "the migration to start")
        panes = [*tmux, "list-panes", "-t", "war-room", "-F", "#{pane_pid}"]
        shell_pid = int(subprocess.run(panes, capture_output=True, text=True).stdout.split()[0])
        subprocess.run([*tmux, "kill-server"], check=True)
        until(lambda: not alive(shell_pid), 10, "the terminal's shell to die of its SIGHUP")
        assert alive(pid), "the detached engine died with its terminal"
        done_before = step(journal, MIGRATE)[1]
        until(lambda: step(journal, MIGRATE)[1] > done_before, 10, "progress after the SIGHUP")

        # stop: a checkpoint, then exit; the step stays resumable; the socket is removed
        seen: list[WatchMessage] = []
        watch = RemoteEngine(socket_path(journal)).subscribe(seen.append)
        code, stdout, err = runbook(capsys, "stop", "--by", "al", *args)
        assert code == 0 and "engine stopped" in stdout, err
        assert not socket_path(journal).exists()  # removed before it let go of the lock
        until(lambda: not alive(pid), 10, "the engine to exit")
        until(watch.ended.is_set, 5, "the watcher's stream to end")
        assert seen[-1].type == "end" and seen[-1].data["outcome"] == "interrupted", seen[-3:]
        status, done = step(journal, MIGRATE)
        assert status == "running" and 0 < done < 300  # interrupted mid-step, at a checkpoint
        audit = " ".join(a.what for a in JournalStore(journal).load().audit)
        assert "throttle: rate 40" in audit and "stopped the detached engine" in audit

        # a new detached engine resumes from that checkpoint and finishes the step
        pid = start_detached(capsys, journal)
        until(lambda: step(journal, MIGRATE)[0] == "done", 60, "the migrate step to finish")
        until(lambda: not alive(pid), 20, "the engine to exit once every step is done")
        assert is_locked(journal) is None
        assert not socket_path(journal).exists()  # it removed its socket on the way out
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)


def test_pause_throttle_resume_watch_then_a_dead_engines_socket(capsys, journal: Path):
    pid = start_detached(capsys, journal, "--rate", "100")  # no item moves unthrottled
    args = common(journal)
    assert RemoteEngine(socket_path(journal)).status().control.throttle.rate == 100
    until(lambda: step(journal, MIGRATE)[0] == "running", 30, "the migration to start")

    # a watcher sees progress within 1 s of the engine announcing it
    remote = RemoteEngine(socket_path(journal))
    seen: list[tuple[float, WatchMessage]] = []
    subscribed = time.time()  # wall clock: comparable with the engine's `at` on this host
    watch = remote.subscribe(lambda m: seen.append((time.time(), m)))
    progress = lambda: [(t, m.data) for t, m in seen if m.type == "progress"]  # noqa: E731
    until(lambda: len(progress()) >= 3, 10, "three progress messages")
    assert progress()[0][0] - subscribed < 1.0
    lags = [received - data["at"] for received, data in progress()]
    assert max(lags) < 1.0, lags
    assert any(m.type == "snapshot" for _, m in seen) and any(m.type == "control" for _, m in seen)

    # a rate once its samples span long enough to mean something (engine/context.py)
    until(lambda: live_table(remote)["rate"] is not None, 10, "a live items/s")

    # pause: the run stands at a checkpoint boundary; progress stops; status says so
    code, out, _ = runbook(capsys, "pause", "--by", "al", *args)
    assert code == 0 and "pausing" in out
    until(lambda: remote.status().control.pause == "paused", 10, "the pause to hold")
    held_at = live_done(remote)
    assert held_at < 300
    assert "PAUSED at a checkpoint" in runbook(capsys, "status", *args)[1]
    live = json.loads(runbook(capsys, "status", "--json", *args)[1])  # the engine's snapshot
    assert live["engine"]["pause"] == "paused" and live["state"] == "RUNNING"
    table = next(s for s in live["steps"] if s["id"] == MIGRATE)["progress"][0]
    assert table["done"] == held_at and table["rate"] is not None  # live items/s
    until(
        lambda: any(m.type == "control" and m.data["pause"] == "paused" for _, m in seen),
        2,
        "the watcher to see the pause",
    )
    window = time.monotonic() + 1.0  # an assertion over a window: nothing moves while paused
    while time.monotonic() < window:
        assert live_done(remote) == held_at
    # throttle while paused, then resume: progress goes on
    code, out, _ = runbook(capsys, "throttle", "--rate", "50", "--in-flight", "4", *args)
    assert code == 0 and "rate 50 items/s" in out
    assert remote.status().control.throttle.in_flight == 4
    assert runbook(capsys, "resume", *args)[0] == 0
    until(lambda: step(journal, MIGRATE)[1] > held_at, 10, "progress after resume")
    audit = " ".join(a.what for a in JournalStore(journal).load().audit)
    assert "paused the run" in audit and "throttle: rate 50" in audit

    # a dead engine: SIGKILL leaves its socket; the next runbook says so and resumes
    os.kill(pid, signal.SIGKILL)
    until(lambda: is_locked(journal) is None, 10, "the kernel to free the lock")
    until(watch.ended.is_set, 5, "the watcher's stream to end")
    assert not any(m.type == "end" for _, m in seen)  # it died: it could not say goodbye
    assert socket_path(journal).exists()
    code, _, err = runbook(capsys, "run", "--yes", *args)
    assert code == 0, err
    first = err.splitlines()[0]
    assert f"the detached engine (pid {pid}) is gone" in first and "resuming now" in first
    assert not socket_path(journal).exists()
    assert step(journal, MIGRATE) == ("done", 300)
    assert runbook(capsys, "pause", *args)[0] == 2  # no engine now: one line, exit 2


def test_another_user_is_refused(aws, tmp_path: Path):
    """Real other uid (nobody, through setpriv): the 0700 folder stops it; with the folder and
    socket opened up on purpose, the engine's own peer-uid check (SO_PEERCRED) refuses it."""
    if os.getuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to act as another user")
    place = Path(tempfile.mkdtemp(prefix="dt-", dir="/tmp"))  # one nobody can traverse
    os.chmod(place, 0o711)
    journal = place / "j.toml"
    sock = socket_path(journal)
    engine = seeded_engine(aws, journal, MINI_RUNBOOK, "world-peer", 100.0)
    server = ControlServer(sock, journal, DetachedRun(engine, socket=str(sock)))
    server.start()
    try:
        modes = (os.stat(sock.parent).st_mode & 0o777, os.stat(sock).st_mode & 0o777)
        assert modes == (0o700, 0o600)
        client = (
            "import socket,sys\n"
            "s=socket.socket(socket.AF_UNIX)\n"
            "try:\n"
            f"    s.connect({str(sock)!r})\n"
            "except OSError as e:\n"
            "    print('connect-error', e.errno); sys.exit(0)\n"
            "try:\n"  # the engine may refuse and close before this send: EPIPE
            '    s.sendall(b\'{"cmd":"status"}\\n\')\n'
            "except OSError:\n"
            "    pass\n"
            "print(s.makefile().readline())\n"  # its refusal was written first
        )
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
        run = lambda: subprocess.run(  # noqa: E731
            [*as_nobody, "/usr/bin/python3", "-c", client], capture_output=True, text=True
        )
        assert run().stdout.split() == ["connect-error", "13"]  # EACCES: the folder is 0700
        os.chmod(sock.parent, 0o711)
        os.chmod(sock, 0o666)
        answer = json.loads(run().stdout)
        assert answer["ok"] is False and answer["refusal"]["kind"] == "not_allowed"
        assert "uid 65534 is not the engine's user" in answer["refusal"]["message"]
        assert RemoteEngine(sock).status().control.pid == os.getpid()  # its user: served
    finally:
        server.close()
        shutil.rmtree(place, ignore_errors=True)
    assert not sock.exists()


def test_start_throttled_needs_detach(capsys, tmp_path: Path):
    """`run --rate` without --detach: one line, exit 2, nothing started or written."""
    journal = tmp_path / "j.toml"
    code, out, err = runbook(capsys, "run", "--yes", "--rate", "5", *common(journal))
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert "add --detach" in err
    assert not journal.exists() and not socket_path(journal).exists()


def test_a_detach_that_cannot_start_says_why_with_the_usual_exit_code(capsys, tmp_path: Path):
    """The child's error before READY reaches the operator: one line, exit 4 for a lock."""
    journal = tmp_path / "j.toml"
    with JournalLock(journal, "run"):
        code, out, err = runbook(capsys, "run", "--detach", "--yes", *common(journal))
    assert code == 4 and out == ""
    assert err.startswith("runbook: journal is locked by") and len(err.splitlines()) == 1
    assert not socket_path(journal).exists()


def watch_runbook(tmp_path: Path) -> Path:
    """The detach runbook ending in a one-minute watch window (no triggers): at x6 its one
    tick is a 10 s wait."""
    extra = (
        '\n[[steps]]\nid = "watch"\nphase = "phase1"\ntitle = "Watch a minute"\n'
        'slot = "09:30-09:31"\naction = "watch_window"\nparams = { minutes = 1, triggers = [] }\n'
    )
    head, tail = RUNBOOK.read_text().split("[embedded]", 1)
    path = tmp_path / "watch.toml"
    path.write_text(head + extra + "\n[embedded]" + tail)
    return path


def test_a_pause_holds_inside_a_watch_window(capsys, journal: Path) -> None:
    """Paused in the middle of a watch window's wait: the engine says `paused` at once (not at
    the tick's end), the window does not end while paused, and after `resume` it still
    watches the rest of its minute: paused time is not counted as watched."""
    book = watch_runbook(journal.parent)
    args = ["--runbook", str(book), "--journal", str(journal)]
    code, _, err = runbook(capsys, "run", "--detach", "--yes", "--time-scale", "6", *args)
    assert code == 0, err
    remote = RemoteEngine(socket_path(journal))
    tick = 10.0  # the window's one tick: 60 plan seconds at x6

    def state():
        while True:
            try:
                return JournalStore(journal).load().steps.get("watch")
            except Exception:  # mid-rename on the engine's save: read again
                continue

    until(lambda: (s := state()) is not None and s.status == "running", 60, "the window")
    assert runbook(capsys, "pause", "--by", "al", *args)[0] == 0
    paused_at = time.monotonic()
    until(lambda: remote.status().control.pause == "paused", 30, "the pause")
    # "at once": held before the tick would have ended on its own, however loaded the machine
    assert time.monotonic() - paused_at < tick, "the pause waited for the tick's end"
    window = paused_at + tick + 0.5  # past the window's own end
    while time.monotonic() < window:
        assert state().status == "running" and state().cursors["remaining_seconds"] == 60
    held_for = time.monotonic() - paused_at
    assert runbook(capsys, "resume", "--by", "al", *args)[0] == 0
    until(lambda: state().status == "done", 15, "the window to end after the resume")
    watched = (state().finished_at - state().started_at).total_seconds()  # to the second
    assert watched >= tick + held_for - 1.2, (watched, held_for)
    assert state().summary["ticks"] == 1


def test_stop_while_the_engine_waits_at_a_gate_says_stopped(capsys, tmp_path: Path) -> None:
    """Issue 20, item 10: at a gate the engine's loop is idle, so it exits at once on `stop`,
    before its answer could be sent; `stop` waits for it to be gone and says "stopped", exit 0."""
    journal = tmp_path / "gate.toml"
    args = ["--runbook", str(MINI_RUNBOOK), "--journal", str(journal)]
    try:
        code, out, err = runbook(capsys, "run", "--detach", "--yes", "--time-scale", "1000", *args)
        assert code == 0, err
        pid = int(re.search(r"engine started: pid (\d+)", out).group(1))
        remote = RemoteEngine(socket_path(journal))
        at_gate = lambda: last_status(remote) == "waiting"  # noqa: E731
        until(at_gate, 60, "the engine to wait at gate-phase2")
        code, stdout, err = runbook(capsys, "stop", "--by", "al", *args)
        assert code == 0, err
        assert "engine stopped; checkpoint saved" in stdout and err == ""
        until(lambda: not alive(pid), 10, "the engine to exit")
    finally:
        for pid in engine_pids(journal):
            os.kill(pid, signal.SIGKILL)
        stop_world(record_path_for(journal))
