"""tick, decide, ack and rollback through a detached engine's socket, with today's exit codes,
and a headless `runbook watch` that follows it to the end. The engine runs in this process
(its driver in a thread, on moto), the commands through the real CLI entry point."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from engine.cli.app import main
from engine.control.client import RemoteEngine, WatchMessage, as_event
from engine.control.job_loop import DetachedRun
from engine.control.paths import socket_path
from engine.control.server import ControlServer
from engine.core.events import LogLine, SnapshotChanged
from engine.core.views import RunSnapshot
from tests.support.paths import MINI_RUNBOOK
from tests.support.world import seeded_engine


def until(condition, seconds: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return value


def test_commands_go_through_the_detached_engine(aws, tmp_path: Path, capsys) -> None:
    journal = tmp_path / "j.toml"
    sock = socket_path(journal)
    engine = seeded_engine(aws, journal, MINI_RUNBOOK, "world-ctl", 100.0)
    engine.save()
    driver = DetachedRun(engine, consent=True, socket=str(sock))
    server = ControlServer(sock, journal, driver)
    server.start()
    outcome: list = []
    engine_thread = threading.Thread(target=lambda: outcome.append(driver.serve()), daemon=True)
    engine_thread.start()
    common = ["--runbook", str(MINI_RUNBOOK), "--journal", str(journal)]

    def runbook(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([*args, *common])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    events: list = []

    def seen(message: WatchMessage) -> None:  # as an attached console reads the stream
        if (event := as_event(message)) is not None:
            events.append(event)

    subscription = RemoteEngine(sock).subscribe(seen)
    watched: list[int] = []
    watcher = threading.Thread(target=lambda: watched.append(main(["watch", *common])))
    try:
        watcher.start()

        def waiting() -> str:
            idle = driver.control_state().activity == "idle"
            return str(engine.waiting()) if idle else ""

        until(lambda: waiting() == "gate gate-phase2", what="the gate")

        code, _, err = runbook("run", "--yes")  # a second driver: refused, pointed at the engine
        assert code == 4 and "a detached engine" in err and "runbook watch" in err
        code, _, err = runbook("decide", "gate-phase2", "--go", "--by", "al")
        assert code == 1 and "GO refused" in err  # team-ready is not ticked
        assert runbook("tick", "gate-phase2", "nope", "--by", "al")[0] == 2
        code, out, _ = runbook("tick", "gate-phase2", "team-ready", "--by", "al")
        assert code == 0 and "through the detached engine" in out
        code, out, _ = runbook("decide", "gate-phase2", "--go", "--by", "al")
        assert code == 0 and "GO recorded by al" in out and "[x] team-ready" in out
        until(lambda: waiting() == "step handover", what="the manual step")

        code, out, _ = runbook("rollback", "phase2", "--yes", "--by", "carol")
        assert code == 0 and "Safety backup" in out
        assert engine.journal.rollbacks[-1].status == "done"
        assert engine.journal.gate("gate-phase2").decision is None  # reopened by the rollback
        assert runbook("tick", "gate-phase2", "team-ready", "--by", "al")[0] == 0
        assert runbook("decide", "gate-phase2", "--go", "--by", "al")[0] == 0
        until(lambda: waiting() == "step handover", what="the manual step")
        code, out, _ = runbook("ack", "handover", "--by", "bo")
        assert code == 0 and "the detached engine continues" in out
        engine_thread.join(30)
        assert outcome and outcome[0].status == "done"
        watcher.join(10)
        assert watched == [0]
        assert "engine ended: done" in capsys.readouterr().out
    finally:
        driver.signal_stop()
        server.close()
        engine_thread.join(10)
        watcher.join(10)
    assert engine.journal.step("final-backups").status == "done"
    until(subscription.ended.is_set, 5, "the event stream to end")
    snapshots = [e.snapshot for e in events if isinstance(e, SnapshotChanged)]
    assert snapshots and isinstance(snapshots[0], RunSnapshot)
    assert snapshots[-1].steps_done == len(snapshots[-1].steps)  # the last one: all done
    assert any(isinstance(e, LogLine) and "acknowledged handover" in e.message for e in events)
    audit = [a.what for a in engine.journal.audit]
    assert "acknowledged handover" in audit and any("rollback" in a for a in audit)
