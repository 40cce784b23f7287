"""`runbook status` for a person: the snapshot as plain lines, what the run waits for first, with
the command that moves it on. No Python reprs: absent values read as "-" or are left out."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.core.views import GateView, RunSnapshot, RunState, StepView
from engine.run.snapshot import parse_ts

GLYPH = {
    "pending": "·",
    "running": ">",
    "done": "ok",
    "failed": "FAIL",
    "interrupted": "||",
    "rolled_back": "undo",
    "waiting": "WAIT",
}


def when(value: datetime | str | None) -> str:
    moment = parse_ts(value)  # a journal assigned a string in place still reads
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if moment else "-"


def hhmm(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%H:%M") if value else "--:--"


def _progress(step: StepView) -> str:
    parts = []
    for t in step.progress:
        total = f"{t.total:,}" if t.total is not None else "?"
        capacity = f" [{t.capacity}]" if t.capacity else ""  # consumed units/s vs the budget
        parts.append(f"{t.table} {t.done:,}/{total}{capacity}")
    return ", ".join(parts)


def approval_lines(gate: GateView) -> list[str]:
    """The gate's approval rules and where they stand (verified identities only)."""
    if not (gate.min_approvals or gate.approver_not_operator):
        return []
    rules = []
    if gate.min_approvals:
        rules.append(f"{gate.min_approvals} distinct approvers")
    if gate.approver_not_operator:
        rules.append("an approver other than the operator")
    who = ", ".join(gate.approved_by) or "none yet"
    lines = [f"  approvals: needs {' and '.join(rules)}; verified so far: {who}"]
    if gate.approval_problem:
        lines.append(f"  GO needs: {gate.approval_problem}")
    return lines


def gate_lines(gate: GateView) -> list[str]:
    lines = []
    unticked = [i for i in gate.items if i.kind == "manual" and not i.ok]
    ticked = [i for i in gate.items if i.kind == "manual" and i.ok]
    failing = [i for i in gate.items if i.kind == "auto" and i.ok is False]
    unknown = [i for i in gate.items if i.kind == "auto" and i.ok is None]
    lines.append(f"  {gate.met}/{len(gate.items)} items met")
    lines += approval_lines(gate)
    for item in ticked:
        lines.append(f"  ticked:   {item.id} by {item.by} [{item.identity or 'not verified'}]")
    for item in unticked:
        lines.append(f"  unticked: {item.id} ({item.text})")
        who = f"   (may tick: {', '.join(item.approvers)})" if item.approvers else ""
        lines.append(f"      runbook tick {gate.id} {item.id} --by NAME{who}")
    for item in failing:
        lines.append(f"  failing:  {item.id} ({item.text}): {item.detail} [{when(item.at)}]")
    for item in unknown:
        lines.append(f"  not evaluated yet: {item.id} ({item.text}); `decide` evaluates it")
    if unticked or failing or gate.approval_problem:
        lines.append(
            f"  then: runbook decide {gate.id} --go --by NAME "
            "(or --override REASON, or --no-go --note WHY)"
        )
    else:
        lines.append(f"  next: runbook decide {gate.id} --go --by NAME")
    return lines


def _alert_lines(snapshot: RunSnapshot) -> list[str]:
    """Each alert that fired: what, its value against the threshold, and the rollback that
    followed (its state), so the text says why steps read "rolled_back"."""
    lines = []
    for alert in snapshot.alerts:
        where = f" during {alert.step}" if alert.step else ""
        lines.append(
            f"ALERT {when(alert.at)} {alert.trigger}: {alert.measured:g} against a threshold of "
            f"{alert.threshold:g}{where}"
        )
        ran = [r for r in snapshot.rollbacks if r.id == alert.rollback]
        if ran:
            how = "automatic" if alert.auto_rollback else "by " + ran[-1].by
            lines.append(f"  rollback {alert.rollback} ({how}): {ran[-1].status}")
        elif alert.rollback:
            lines.append(f"  proposed rollback {alert.rollback}: not run")
    return lines


def render_status(snapshot: RunSnapshot) -> list[str]:
    out: list[str] = []
    run = snapshot.run
    if run is None:
        out.append("no run yet: every step is pending; start one with `runbook run`")
    else:
        target = run.target
        scale = f", time scale x{run.time_scale:g}" if run.time_scale != 1 else ""
        out.append(
            f"run {run.runbook_id} by {run.operator} since {when(run.started_at)} "
            f"against {target['kind']} {target['identity']}{scale}"
        )
    state = snapshot.state
    headline = f"state: {state.value}"
    if snapshot.driver:
        headline += f" (driven by {snapshot.driver})"
    if failing := snapshot.notifications.status_line:
        headline += f" · {failing}"
    out.append(headline)
    if run is not None and run.driver:
        out.append(f"operator identity (verified): {run.driver}")
    for line in snapshot.notifications.failing:
        out.append(f"  notification failed: {line}")
    waiting = snapshot.waiting
    if state is RunState.WAITING_GATE and waiting:
        gate = snapshot.gate(waiting.id)
        out.append(f"waiting at gate {gate.id}: {gate.title}")
        out += gate_lines(gate)
    elif state is RunState.WAITING_ACK and waiting:
        step = snapshot.step(waiting.id)
        if step.needs_acceptance:
            out.append(f"waiting at step {step.id}: its findings need acceptance: {step.error}")
            out.append(f"  next: runbook ack {step.id} --by NAME --note WHY (or run: try again)")
        else:
            out.append(f"waiting at manual step {step.id}: {step.title}")
            out.append(f"  {step.instructions.strip()}")
            out.append(f"  next: runbook ack {step.id} --by NAME")
    elif state is RunState.INTERRUPTED:
        what = snapshot.running_rollback or snapshot.interrupted or "-"
        out.append(f"interrupted: {what} stopped at its checkpoint; `runbook run` resumes it")
    elif state is RunState.FAILED:
        what = snapshot.running_rollback or snapshot.failed or "-"
        error = snapshot.step(what).error if snapshot.failed == what else None
        out.append(f"failed: {what}" + (f": {error}" if error else ""))
        out.append("  next: `runbook run` tries again, or `runbook rollback PHASE`")
    elif state is RunState.READY and snapshot.next_node:
        out.append(f"next: {snapshot.next_node} (`runbook run`)")
    elif state is RunState.DONE:
        out.append("every step is done; `runbook report` audits the run")
    out += _alert_lines(snapshot)
    if snapshot.proposed_rollback:
        out.append(f"ALERT: proposed rollback {snapshot.proposed_rollback}")
    if snapshot.next_destructive:
        out.append(f"next destructive step: {snapshot.next_destructive}")
    out.append(f"steps ({snapshot.steps_done}/{len(snapshot.steps)} done):")
    for step in snapshot.steps:
        actual = ""
        if step.started_at:
            end = hhmm(step.finished_at) if step.finished_at else "…"
            actual = f" ({hhmm(step.started_at)}-{end})"
        progress = _progress(step)
        line = f"  {GLYPH[step.status]:4} {step.status:11} {step.slot} {step.id}{actual}"
        if step.attempts > 1:
            line += f" attempt {step.attempts}"
        if progress and step.status != "done":
            line += f"  {progress}"
        if step.acked_by:
            line += f"  acked by {step.acked_by} [{step.acked_identity or 'not verified'}]"
        out.append(line)
    out.append("gates:")
    for gate in snapshot.gates:
        decision = gate.decision or "undecided"
        who = f" by {gate.by} at {when(gate.at)}" if gate.by else ""
        if gate.by and gate.identity:
            who += f" [{gate.identity}]"
        override = f" (override: {gate.override})" if gate.override else ""
        out.append(f"  {gate.id}: {decision}{who}{override}, {gate.met}/{len(gate.items)} met")
    return out
