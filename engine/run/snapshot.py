"""One immutable, typed picture of the run: what the console, `status` and `status --json` show.

The engine builds a `RunSnapshot` after every save and sends it with `SnapshotChanged`; a view
never reads the live journal (the engine thread mutates it). This module builds it from a journal
(the models are in engine/core/views.py, re-exported here) and holds the one place that
decides where the run stands: the next node, what it waits for, whether a gate item is met, the
next gate, the next destructive step and the proposed rollback. Pure: no I/O.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime

from engine.actions.cleanup.state import code_missing_of
from engine.core.views import (
    AlertView,
    GateView,
    ItemView,
    NodeRef,
    NotificationsView,
    RollbackView,
    RunInfo,
    RunSnapshot,
    RunState,
    StepView,
    TableView,
)
from engine.run.approvals import approval_problem, approvers
from engine.runbook.model import GateItem, Runbook
from engine.state.journal import Evidence, GateState, Journal, RunMeta, StepState, Target

# ---- where the run stands (the one place) ------------------------------------------------------


def parse_ts(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None


def awaits_acceptance(state: StepState) -> bool:
    return state.status == "failed" and state.needs_acceptance


def node_satisfied(journal: Journal, node: tuple[str, str]) -> bool:
    kind, node_id = node
    if kind == "gate":
        gate = journal.gates.get(node_id)
        return gate is not None and gate.decision == "GO"
    state = journal.steps.get(node_id)
    return state is not None and state.status == "done"


def next_node(runbook: Runbook, journal: Journal) -> NodeRef | None:
    node = next((n for n in runbook.sequence() if not node_satisfied(journal, n)), None)
    return NodeRef.of(node) if node else None


def waiting_for(runbook: Runbook, journal: Journal) -> NodeRef | None:
    """The human decision the run waits for, if any."""
    node = next_node(runbook, journal)
    if node is None or node.kind == "gate":
        return node
    step = runbook.step(node.id)
    state = journal.steps.get(node.id) or StepState()
    if (step.kind == "manual" or awaits_acceptance(state)) and not state.acked_by:
        return node
    return None


def item_status(item: GateItem, state: GateState | None) -> tuple[bool | None, Evidence | None]:
    """Is this gate item met: a manual item by its tick, an automatic one by its last evidence
    (None: not evaluated since the gate was last reset)."""
    if item.kind == "manual":
        return bool(state and item.id in state.ticks), None
    evidence = state.evidence.get(item.id) if state else None
    return (evidence.ok if evidence else None), evidence


def next_gate(runbook: Runbook, journal: Journal) -> str | None:
    """The first undecided (not GO) gate from the next node on."""
    sequence = runbook.sequence()
    node = next_node(runbook, journal)
    start = sequence.index(node.as_tuple()) if node else len(sequence)
    return next((nid for kind, nid in sequence[start:] if kind == "gate"), None)


def next_destructive(runbook: Runbook, journal: Journal, after: str | None = None) -> str | None:
    """The first destructive step from the next node on (other than `after`)."""
    sequence = runbook.sequence()
    node = next_node(runbook, journal)
    if node is None:
        return None
    for kind, node_id in sequence[sequence.index(node.as_tuple()) :]:
        if (
            kind == "step"
            and node_id != after
            and runbook.step(node_id).destructive
            and not node_satisfied(journal, (kind, node_id))
        ):
            return node_id
    return None


def alerts_of(journal: Journal) -> list[AlertView]:
    out = []
    for raw in journal.alerts:
        out.append(
            AlertView(
                trigger=str(raw.get("trigger", "")),
                step=str(raw.get("step") or "") or None,
                phase=str(raw.get("phase") or "") or None,
                at=parse_ts(raw.get("at")),
                message=str(raw.get("message", "")),
                measured=float(raw.get("measured", 0) or 0),
                threshold=float(raw.get("threshold", 0) or 0),
                rollback=str(raw.get("rollback") or "") or None,
                auto_rollback=bool(raw.get("auto_rollback", False)),
            )
        )
    return out


def proposed_rollback(journal: Journal) -> str | None:
    """The rollback the last alert proposed, while the step it stopped is still failed."""
    alerts = alerts_of(journal)
    if not alerts or alerts[-1].step is None:
        return None
    state = journal.steps.get(alerts[-1].step)
    if state is None or state.status != "failed":
        return None
    return alerts[-1].rollback


def archive_gaps(runbook: Runbook, journal: Journal) -> list[str]:
    """Resources deleted (or being deleted) whose archive is incomplete: a rollback cannot
    bring back what was not archived (function code a deletion step could not fetch)."""
    gaps = []
    for step in runbook.steps:
        if step.action != "delete_functions" or step.id not in journal.steps:
            continue
        missing = code_missing_of(journal, step.id)
        gaps += [f"{fn}: code package not archived ({step.id})" for fn in missing]
    return gaps


# ---- building --------------------------------------------------------------------------------

# (items/s, ETA) per step and table, and the capacity line (consumed units/s vs the budget)
# where the step reports one
Rates = dict[
    tuple[str, str],
    tuple[float | None, float | None] | tuple[float | None, float | None, str | None],
]


def _step_view(runbook: Runbook, journal: Journal, step_id: str, active: bool, waiting, rates):
    step = runbook.step(step_id)
    state = journal.steps.get(step_id) or StepState()
    status: str = state.status
    if waiting == NodeRef.step(step_id):
        status = "waiting"
    elif status == "running" and not active:
        status = "interrupted"  # nothing runs it now: stopped at its last checkpoint
    tables = []
    for table, prog in list(state.progress.items()):
        live = status == "running"
        got = rates.get((step_id, table), ()) if live else ()
        rate, eta = (got[0], got[1]) if got else (None, None)
        capacity = got[2] if len(got) > 2 else None  # type: ignore[misc]
        tables.append(
            TableView(
                table=table,
                done=prog.done,
                total=prog.total,
                rate=rate,
                eta_seconds=eta,
                capacity=capacity,
            )
        )
    return StepView(
        id=step.id,
        phase=step.phase,
        kind=step.kind,
        action=step.action,
        title=step.title,
        slot=step.slot,
        slot_start=step.slot_start,
        destructive=step.destructive,
        instructions=step.instructions,
        status=status,  # type: ignore[arg-type]
        journal_status=state.status,
        attempts=state.attempts,
        started_at=parse_ts(state.started_at),
        finished_at=parse_ts(state.finished_at),
        checkpoint_at=parse_ts(state.checkpoint_at),
        progress=tuple(tables),
        summary=copy.deepcopy(state.summary),
        error=state.error,
        acked_by=state.acked_by,
        acked_at=parse_ts(state.acked_at),
        ack_note=state.ack_note,
        needs_acceptance=awaits_acceptance(state),
        acked_identity=state.acked_identity.text() if state.acked_identity else None,
    )


def _gate_view(runbook: Runbook, journal: Journal, gate_id: str) -> GateView:
    gate = runbook.gate(gate_id)
    state = journal.gates.get(gate_id)
    items = []
    for item in gate.items:
        ok, evidence = item_status(item, state)
        if item.kind == "manual":
            tick = state.ticks.get(item.id) if state else None
            who = tick.identity if tick else None
            detail = "not ticked"
            if tick:
                detail = f"ticked by {tick.by}" + (f" ({who.principal})" if who else "")
            items.append(
                ItemView(
                    id=item.id,
                    kind="manual",
                    text=item.text,
                    ok=ok,
                    detail=detail,
                    at=parse_ts(tick.at) if tick else None,
                    by=tick.by if tick else None,
                    principal=who.principal if who else None,
                    identity=who.text() if who else None,
                    approvers=tuple(item.approvers),
                )
            )
        else:
            items.append(
                ItemView(
                    id=item.id,
                    kind="auto",
                    text=item.text,
                    ok=ok,
                    detail=evidence.detail if evidence else "not evaluated yet",
                    data=copy.deepcopy(evidence.data) if evidence else {},
                    at=parse_ts(evidence.at) if evidence else None,
                )
            )
    return GateView(
        id=gate.id,
        title=gate.title,
        decision=state.decision if state else None,
        by=state.by if state else None,
        at=parse_ts(state.at) if state else None,
        note=state.note if state else "",
        override=state.override if state else None,
        items=tuple(items),
        identity=state.identity.text() if state and state.identity else None,
        min_approvals=gate.min_approvals,
        approver_not_operator=gate.approver_not_operator,
        approved_by=tuple(approvers(gate, state)),
        approval_problem=approval_problem(gate, state, journal.run.driver),
    )


def run_state(
    journal: Journal, active: bool, waiting: NodeRef | None, nxt: NodeRef | None
) -> RunState:
    running = any(s.status == "running" for s in journal.steps.values())
    rollback = next((r for r in journal.rollbacks if r.status != "done"), None)
    if active:
        return RunState.RUNNING
    if waiting is not None:
        return RunState.WAITING_GATE if waiting.kind == "gate" else RunState.WAITING_ACK
    if rollback is not None:
        return RunState.FAILED if rollback.status == "failed" else RunState.INTERRUPTED
    if nxt is None:
        return RunState.DONE
    if running:
        return RunState.INTERRUPTED
    if any(s.status == "failed" for s in journal.steps.values()):
        return RunState.FAILED
    return RunState.READY


def build_snapshot(
    runbook: Runbook,
    journal: Journal,
    *,
    active: bool = False,
    rates: Rates | None = None,
    journal_path: str = "",
    driver: str | None = None,
) -> RunSnapshot:
    """`active`: an engine runs now (this one, or the driver another console watches)."""
    rates = rates or {}
    waiting = waiting_for(runbook, journal)
    nxt = next_node(runbook, journal)
    running_step = next((sid for sid, s in journal.steps.items() if s.status == "running"), None)
    rollback = next((r for r in journal.rollbacks if r.status != "done"), None)
    if active and running_step:
        current: NodeRef | None = NodeRef.step(running_step)
    elif running_step and waiting is None:
        current = NodeRef.step(running_step)
    else:
        current = nxt
    run = journal.run
    return RunSnapshot(
        taken_at=datetime.now(UTC),
        run=RunInfo(
            runbook_id=run.runbook_id,
            runbook_title=runbook.runbook.title,
            runbook_sha256=run.runbook_sha256,
            operator=run.operator,
            started_at=parse_ts(run.started_at),
            migration_ts=run.migration_ts,
            time_scale=run.time_scale,
            target=run.target.model_dump(),
            journal=journal_path,
            driver=run.driver.text() if run.driver else None,
        ),
        state=run_state(journal, active, waiting, nxt),
        driver=driver,
        current=current,
        waiting=waiting,
        next_node=nxt,
        next_gate=next_gate(runbook, journal),
        next_destructive=next_destructive(runbook, journal),
        proposed_rollback=proposed_rollback(journal),
        running_rollback=rollback.id if rollback else None,
        archive_gaps=tuple(archive_gaps(runbook, journal)),
        steps=tuple(
            _step_view(runbook, journal, s.id, active, waiting, rates) for s in runbook.steps
        ),
        gates=tuple(_gate_view(runbook, journal, g.id) for g in runbook.gates),
        alerts=tuple(alerts_of(journal)),
        rollbacks=tuple(
            RollbackView(
                id=r.id,
                phase=r.phase,
                status=r.status,
                by=r.by,
                started_at=parse_ts(r.started_at),
                finished_at=parse_ts(r.finished_at),
                step_index=r.step_index,
                error=r.error,
                identity=r.identity.text() if r.identity else None,
            )
            for r in journal.rollbacks
        ),
        notifications=notifications_view(runbook, journal),
    )


def notifications_view(runbook: Runbook, journal: Journal) -> NotificationsView:
    record = journal.notifications
    return NotificationsView(
        configured=runbook.notify is not None,
        sent=record.sent,
        failed=record.failed,
        failing=tuple(
            f"{d.kind} at {d.target}: {d.error}"
            for d in record.failures()
            if d.target in record.failing_targets()
        )[-5:],
    )


def empty_snapshot(runbook: Runbook, journal_path: str = "") -> RunSnapshot:
    """Before any run: every step pending, no journal."""

    journal = Journal(
        run=RunMeta(
            runbook_id=runbook.runbook.id,
            runbook_sha256="",
            operator="",
            target=Target(kind="embedded", identity="", region=""),
            started_at=datetime.now(UTC),
            migration_ts="",
        )
    )
    snap = build_snapshot(runbook, journal, journal_path=journal_path)
    return snap.model_copy(update={"run": None, "state": RunState.READY, "waiting": None})
