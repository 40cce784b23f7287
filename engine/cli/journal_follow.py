"""`runbook watch --journal s3://...` on a machine where no engine of the run lives: follow the
journal in S3, read-only, with conditional GETs (a 304 costs no body while nothing changed),
printing a line each time the run's state moves, until it is done or Ctrl-C."""

from __future__ import annotations

import threading
from collections.abc import Callable

from engine.cli.codes import EXIT_OK
from engine.core.views import RunSnapshot, RunState
from engine.session.workspace import Workspace

POLL_SECONDS = 5.0  # a GET per 5 s while nothing changes: about 17,000 a day


def state_line(snapshot: RunSnapshot) -> str:
    where = snapshot.waiting or snapshot.current
    at = f" {where.kind} {where.id}" if where else ""
    done = f"{snapshot.steps_done}/{len(snapshot.steps)} steps done"
    return f"{snapshot.state.value}{at} · {done}"


def follow_journal(
    ws: Workspace,
    say: Callable[[str], None],
    stop: threading.Event,
    poll: float = POLL_SECONDS,
) -> int:
    engine = ws.open_read_only()
    say(f"following {ws.journal_arg} (read-only; Ctrl-C stops following, not the run)")
    shown = ""
    while True:
        line = state_line(engine.snapshot(active=False))
        if line != shown:
            say(line)
            shown = line
        if engine.snapshot(active=False).state is RunState.DONE or stop.wait(poll):
            return EXIT_OK
        ws.reload(engine)
