"""The top bar and the status line, as text from a snapshot (pure: no Textual here).

The status line always ends with what to press next; notifications are kept clear of it."""

from __future__ import annotations

from engine.core.commands import ThrottleView
from engine.core.views import RunSnapshot, RunState
from engine.rehearsal.clock import clock_label
from engine.state.lock import Holder


def topbar_text(
    snapshot: RunSnapshot,
    operator: str,
    read_only: bool,
    holder: Holder | None,
    view_only: bool = False,
    driving: str = "DRIVING",
    width: int | None = None,
) -> str:
    """view_only: a watcher (`runbook serve`) who cannot drive from here whoever does.
    `driving`: how this console drives (DRIVING, or ATTACHED to a detached engine).

    What matters most comes first, so that a narrow terminal cuts the least: the clock, who
    drives and who you are, then the runbook and the target. Given `width`, the parts that do
    not fit are left out whole (the target, then the runbook), never cut mid-word."""
    run = snapshot.run
    clock = clock_label(run.time_scale) if run else ""  # always: REHEARSAL xN or REAL TIME
    if view_only:
        driver = f"driven by {holder.user}@{holder.host}" if holder else "no console drives now"
        first = ["VIEW ONLY", driver]
    elif read_only and holder is None:
        first = ["READ-ONLY", f"you: {operator}", "nobody drives: q, then runbook"]
    elif read_only and holder is not None:
        first = ["READ-ONLY", f"driven by {holder.user}@{holder.host}", f"you: {operator}"]
    else:
        first = [driving, operator]
    optional = (
        [run.runbook_id, f"{run.target['kind']} {run.target['identity']}"]
        if run
        else ["no run yet"]
    )
    parts = [p for p in [clock, *first, *optional] if p]
    while width is not None and len(_joined(parts)) > width and len(parts) > len(first) + 1:
        parts.pop()  # the least important part left: the target, then the runbook
    return _joined(parts)


def _joined(parts: list[str]) -> str:
    return " " + " · ".join(parts)


def status_text(
    snapshot: RunSnapshot, read_only: bool, busy: bool, holder: Holder | None = None
) -> str:
    """busy: this console has just started the engine (its first snapshot is on its way)."""
    hint = (lambda text: "") if read_only else (lambda text: f" · {text}")
    state = snapshot.state
    current = snapshot.current.id if snapshot.current else ""
    if snapshot.checkpoint_held and (busy or state is RunState.RUNNING):
        line = f"HOLDING {snapshot.running_rollback or current} at its checkpoint: S3 unreachable"
        line += ", retrying (nothing goes on before it is durable)"
    elif busy or state is RunState.RUNNING:
        line = f"RUNNING {snapshot.running_rollback or current}"
        line += " (driven elsewhere)" if read_only else hint("s stops safely")
    elif state is RunState.WAITING_GATE and snapshot.waiting:
        line = f"WAITING at gate {snapshot.waiting.id}" + hint("g opens the gate")
    elif state is RunState.WAITING_ACK and snapshot.waiting:
        line = f"WAITING at step {snapshot.waiting.id}" + hint("a acknowledges")
    elif state is RunState.DONE:
        line = "DONE"
    elif state is RunState.INTERRUPTED:
        what = snapshot.running_rollback or snapshot.interrupted or current
        if read_only and holder is None:
            line = f"INTERRUPTED {what} (its driver left)"
        else:
            line = f"INTERRUPTED {what}" + hint("r resumes from its checkpoint")
    elif state is RunState.FAILED:
        what = snapshot.running_rollback or snapshot.failed or current
        line = f"FAILED {what}" + hint("r retries · b rolls back")
    else:
        line = f"READY · next {snapshot.next_node}" + hint("r runs")
    if read_only:
        line = "READ-ONLY · " + line
    failing = snapshot.notifications.status_line  # a webhook down: said, never blocking
    tail = f" · {failing.upper()}" if failing else ""
    return f" {line} · {snapshot.steps_done}/{len(snapshot.steps)} steps done{tail}"


def next_gate_line(snapshot: RunSnapshot) -> str | None:
    """The next undecided gate and how many of its items are met (is it safe to go on?)."""
    if snapshot.next_gate is None:
        return None
    gate = snapshot.gate(snapshot.next_gate)
    return f"next gate {gate.id}: {gate.met}/{len(gate.items)} met · g opens it"


# a detached engine's pause: writes stop at a batch boundary, waits (watch windows, polls)
# stand still, their plan time with them, until r resumes
PAUSE_LINES = {
    "pausing": " PAUSING: the batch under way finishes · r resumes ·",
    "paused": " PAUSED: no writes, waits stand still · r resumes ·",
}


def throttle_note(throttle: ThrottleView) -> str:
    """A detached engine's throttle, short, for the end of the status line ('' if none)."""
    parts = []
    if throttle.rate:
        parts.append(f"{throttle.rate:g} items/s")
    if throttle.in_flight:
        parts.append(f"{throttle.in_flight} in flight")
    if throttle.capacity_share:
        parts.append(f"{throttle.capacity_share:.0%} of capacity")
    return f" · THROTTLED {', '.join(parts)}" if parts else ""
