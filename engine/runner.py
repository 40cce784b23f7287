"""The Engine: walks the runbook, runs actions, records gates, and emits events.

Both the CLI and the TUI drive this class; neither holds migration logic of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from engine.actions import registry as action_registry
from engine.checks import registry as check_registry
from engine.clock import Clock, Interrupted
from engine.context import ActionContext, NeedsAcceptance, PlannedCall
from engine.events import (
    Alert,
    Event,
    JournalChanged,
    LogLine,
    StepFinished,
    StepStarted,
    Subscriber,
    WaitingAtGate,
    WaitingForAck,
    as_log_line,
)
from engine.journal import (
    Evidence,
    Journal,
    JournalStore,
    RollbackRecord,
    StepState,
    Tick,
    utcnow,
)
from engine.model import Gate, Runbook, Step
from engine.throttle import WriteThrottle

Node = tuple[Literal["gate", "step"], str]
# (what: a step id or rollback title, token the operator must type: the phase id) -> consent
Confirm = Callable[[str, str], bool]


class Refused(Exception):
    """A command the engine will not carry out as asked (exit 1)."""


class BadRequest(Exception):
    """A command that names something that does not exist, or is malformed (exit 2)."""


@dataclass
class Outcome:
    status: Literal["done", "waiting", "failed", "interrupted", "declined"]
    waiting: dict[str, str] | None = None
    failed_step: str | None = None
    message: str = ""


@dataclass
class EngineOptions:
    operator: str
    time_scale: float = 1.0
    is_embedded: bool = False
    mapping_overrides: Path | None = None


NEEDS_ACCEPTANCE = "needs_acceptance"  # a step cursor: its findings wait for `ack`


def awaits_acceptance(state: StepState) -> bool:
    return state.status == "failed" and bool(state.cursors.get(NEEDS_ACCEPTANCE))


@dataclass
class Engine:
    runbook: Runbook
    journal: Journal
    store: JournalStore
    clients: Callable[[str], Any]
    options: EngineOptions
    _subscribers: list[Subscriber] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _io_lock: threading.RLock = field(default_factory=threading.RLock)
    # writes in flight in data steps: `write_throttle.set_limit(k)` changes it during a run
    write_throttle: WriteThrottle = field(default_factory=WriteThrottle)

    # ---- events -------------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def emit(self, event: Event) -> None:
        if isinstance(event, LogLine):
            self._append_log(event)
        elif (line := as_log_line(event, utcnow())) is not None:
            self._append_log(line)
        elif isinstance(event, Alert):
            self._append_log(LogLine(event.step_id, "error", f"ALERT {event.message}", utcnow()))
        for subscriber in list(self._subscribers):
            subscriber(event)

    def log(self, message: str, level: str = "info", step_id: str | None = None) -> None:
        self.emit(LogLine(step_id, level, message, utcnow()))  # type: ignore[arg-type]

    def _append_log(self, line: LogLine) -> None:
        self.store.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.store.log_path.open("a", encoding="utf-8") as fh:
            fh.write(
                f"{line.at or utcnow()} {line.level.upper():7} "
                f"[{line.step_id or 'run'}] {line.message}\n"
            )

    def save(self) -> None:
        with self._io_lock:
            # The console may tick or ack from its thread while an action mutates its own
            # slot: a dump that meets a dict mid-change is simply taken again.
            for attempt in range(5):
                try:
                    self.store.save(self.journal)
                    break
                except RuntimeError:
                    if attempt == 4:
                        raise
        for subscriber in list(self._subscribers):
            subscriber(JournalChanged())

    # ---- stopping -----------------------------------------------------------------------

    def request_stop(self) -> None:
        """Thread-safe: the running action checkpoints at its next check and unwinds."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    # ---- where the run stands -------------------------------------------------------------

    def sequence(self) -> list[Node]:
        return self.runbook.sequence()

    def node_satisfied(self, node: Node) -> bool:
        kind, node_id = node
        if kind == "gate":
            return self.journal.gate(node_id).decision == "GO"
        return self.journal.step(node_id).status in ("done", "skipped")

    def next_node(self) -> Node | None:
        return next((n for n in self.sequence() if not self.node_satisfied(n)), None)

    def waiting(self) -> dict[str, str] | None:
        """The human decision the run waits for, if any."""
        node = self.next_node()
        if node is None:
            return None
        kind, node_id = node
        if kind == "gate":
            return {"kind": "gate", "id": node_id}
        step = self.runbook.step(node_id)
        state = self.journal.step(node_id)
        if (step.kind == "manual" or awaits_acceptance(state)) and not state.acked_by:
            return {"kind": "step", "id": node_id}
        return None

    # ---- running --------------------------------------------------------------------------

    def run(
        self,
        until: str | None = None,
        only: str | None = None,
        confirm: Confirm | None = None,
    ) -> Outcome:
        """Run steps in order until done, a human is needed, a step fails, or a stop."""
        self._stop.clear()
        if only is not None:
            return self._run_only(only, confirm)
        known = {n[1] for n in self.sequence()}
        if until is not None and until not in known:
            raise BadRequest(f"--until {until!r} is neither a step nor a gate of this runbook")
        for node in self.sequence():
            kind, node_id = node
            if self.stop_requested:
                return Outcome("interrupted")
            if kind == "gate":
                gate_state = self.journal.gate(node_id)
                if gate_state.decision != "GO":
                    gate = self.runbook.gate(node_id)
                    self.emit(WaitingAtGate(node_id, gate.title))
                    return Outcome(
                        "waiting",
                        {"kind": "gate", "id": node_id},
                        message=gate.title,
                    )
                if until == node_id:
                    return Outcome("done", message=f"stopped at gate {node_id} (--until)")
                continue
            if not self.node_satisfied(node):
                outcome = self._run_step(self.runbook.step(node_id), confirm)
                if outcome is not None:
                    return outcome
            if until == node_id:
                return Outcome("done", message=f"reached {node_id} (--until)")
        return Outcome("done", message="every step is done")

    def _run_only(self, step_id: str, confirm: Confirm | None) -> Outcome:
        sequence = self.sequence()
        if ("step", step_id) not in sequence:
            raise BadRequest(f"--only {step_id!r} is not a step of this runbook")
        before = sequence[: sequence.index(("step", step_id))]
        pending = [n for n in before if not self.node_satisfied(n)]
        if pending:
            kind, node_id = pending[0]
            raise Refused(
                f"--only {step_id}: {kind} {node_id} before it is not done "
                "(--only never skips a step or a gate)"
            )
        if self.node_satisfied(("step", step_id)):
            return Outcome("done", message=f"{step_id} is already done")
        return self._run_step(self.runbook.step(step_id), confirm) or Outcome("done")

    def _run_step(self, step: Step, confirm: Confirm | None) -> Outcome | None:
        state = self.journal.step(step.id)
        if step.kind == "manual":
            if state.acked_by:
                self._finish(step, state, "done", {"acked_by": state.acked_by})
                return None
            self.emit(WaitingForAck(step.id, step.title))
            return Outcome(
                "waiting",
                {"kind": "step", "id": step.id},
                message=step.title,
            )
        if awaits_acceptance(state) and state.acked_by:  # its findings were accepted
            accepted = {**state.summary, "accepted_by": state.acked_by}
            self._finish(step, state, "done", accepted)
            return None
        if step.requires_gate and self.journal.gate(step.requires_gate).decision != "GO":
            self._fail(step, state, f"refused: gate {step.requires_gate} is not GO")
            return Outcome("failed", failed_step=step.id, message=state.error or "")
        if step.destructive and confirm is not None and not confirm(step.id, step.phase):
            self.log(f"{step.id}: not confirmed; nothing was changed", "warning", step.id)
            return Outcome("declined", message=f"{step.id} was not confirmed")
        return self._execute(step, state)

    def _context(self, step_id: str, state: StepState) -> ActionContext:
        return ActionContext(
            step_id=step_id,
            runbook=self.runbook,
            journal=self.journal,
            state=state,
            clients=self.clients,
            clock=Clock(self.options.time_scale, self._stop),
            artifacts_dir=self.store.artifacts_dir,
            emit=self.emit,
            save=self.save,
            is_embedded=self.options.is_embedded,
            operator=self.options.operator,
            mapping_overrides=self.options.mapping_overrides,
            throttle=self.write_throttle,
        )

    def _execute(self, step: Step, state: StepState) -> Outcome | None:
        action = action_registry()[step.action or ""]
        resumed = state.status == "running"
        state.cursors.pop(NEEDS_ACCEPTANCE, None)
        state.acked_by = state.acked_at = state.ack_note = None
        state.status = "running"
        state.attempts += 1
        state.started_at = state.started_at if resumed else utcnow()
        state.finished_at = None
        state.error = None
        self.journal.add_audit(
            self.options.operator, f"{'resumed' if resumed else 'started'} {step.id}"
        )
        self.save()
        self.emit(StepStarted(step.id, step.title, state.attempts, resumed))
        ctx = self._context(step.id, state)
        try:
            summary = action.run(ctx, action.params.model_validate(step.params))
        except Interrupted:
            state.checkpoint_at = utcnow()
            self.journal.add_audit(self.options.operator, f"interrupted {step.id}")
            self.save()
            self.emit(StepFinished(step.id, "interrupted", {}))
            return Outcome("interrupted", message=f"{step.id} interrupted; its checkpoint is saved")
        except NeedsAcceptance as exc:
            state.summary = exc.summary
            state.cursors[NEEDS_ACCEPTANCE] = True
            self._fail(step, state, str(exc))
            self.emit(WaitingForAck(step.id, step.title))
            return Outcome("waiting", {"kind": "step", "id": step.id}, message=str(exc))
        except Exception as exc:  # any action failure becomes a failed step, never a crash
            self._fail(step, state, f"{type(exc).__name__}: {exc}")
            return Outcome("failed", failed_step=step.id, message=state.error or "")
        self._finish(step, state, "done", summary)
        return None

    def _finish(self, step: Step, state: StepState, status: str, summary: dict[str, Any]) -> None:
        state.status = status  # type: ignore[assignment]
        state.summary = summary
        state.finished_at = utcnow()
        state.started_at = state.started_at or state.finished_at
        self.journal.add_audit(self.options.operator, f"{status} {step.id}")
        self.save()
        self.emit(StepFinished(step.id, status, summary))

    def _fail(self, step: Step, state: StepState, error: str) -> None:
        state.status = "failed"
        state.error = error
        state.finished_at = utcnow()
        self.journal.add_audit(self.options.operator, f"failed {step.id}: {error}")
        self.save()
        self.log(f"{step.id} failed: {error}", "error", step.id)
        self.emit(StepFinished(step.id, "failed", {}, error))

    # ---- gates ----------------------------------------------------------------------------

    def evaluate_gate(self, gate_id: str) -> dict[str, Evidence]:
        """Evaluate automatic items against the live target; manual items by their ticks."""
        gate = self._gate(gate_id)
        state = self.journal.gate(gate_id)
        out: dict[str, Evidence] = {}
        for item in gate.items:
            if item.kind == "manual":
                tick = state.ticks.get(item.id)
                detail = f"ticked by {tick.by} at {tick.at}" if tick else "not ticked"
                out[item.id] = Evidence(ok=tick is not None, detail=detail)
                continue
            check = check_registry()[item.check or ""]
            ctx = self._context(f"{gate_id}:{item.id}", StepState())
            try:
                result = check.evaluate(ctx, check.params.model_validate(item.params))
                out[item.id] = Evidence(ok=result.ok, detail=result.detail, data=result.data)
            except Exception as exc:  # a check that cannot run is a failing check
                out[item.id] = Evidence(ok=False, detail=f"check error: {exc}")
        return out

    def _gate(self, gate_id: str) -> Gate:
        try:
            return self.runbook.gate(gate_id)
        except StopIteration:
            raise BadRequest(f"no gate {gate_id!r} in this runbook") from None

    def tick(self, gate_id: str, item_id: str, by: str, note: str = "") -> None:
        gate = self._gate(gate_id)
        item = next((i for i in gate.items if i.id == item_id), None)
        if item is None:
            raise BadRequest(f"gate {gate_id} has no item {item_id!r}")
        if item.kind != "manual":
            raise Refused(f"{gate_id}/{item_id} is automatic; the engine evaluates it")
        self.journal.gate(gate_id).ticks[item_id] = Tick(by=by, at=utcnow(), note=note)
        self.journal.add_audit(by, f"ticked {gate_id}/{item_id}" + (f": {note}" if note else ""))
        self.save()
        self.log(f"{by} ticked {gate_id}/{item_id}")

    def untick(self, gate_id: str, item_id: str, by: str) -> None:
        self._gate(gate_id)
        if self.journal.gate(gate_id).ticks.pop(item_id, None) is not None:
            self.journal.add_audit(by, f"unticked {gate_id}/{item_id}")
            self.save()

    def ack(self, step_id: str, by: str, note: str = "") -> None:
        try:
            step = self.runbook.step(step_id)
        except StopIteration:
            raise BadRequest(f"no step {step_id!r} in this runbook") from None
        state = self.journal.step(step_id)
        if step.kind != "manual" and not awaits_acceptance(state):
            raise Refused(
                f"{step_id} is not a manual step and has no findings to accept; "
                "`runbook run` executes it"
            )
        state.acked_by, state.acked_at, state.ack_note = by, utcnow(), note or None
        self.journal.add_audit(by, f"acknowledged {step_id}" + (f": {note}" if note else ""))
        self.save()
        self.log(f"{by} acknowledged {step_id}", step_id=step_id)

    def decide(
        self, gate_id: str, go: bool, by: str, note: str = "", override: str | None = None
    ) -> dict[str, Evidence]:
        self._gate(gate_id)
        waiting = self.waiting()
        if waiting != {"kind": "gate", "id": gate_id}:
            at = f"{waiting['kind']} {waiting['id']}" if waiting else "no gate"
            raise Refused(f"only the gate the run waits at can be decided; the run waits at {at}")
        if not go and not note.strip():
            raise BadRequest("a NO-GO needs a note saying why")
        evidence = self.evaluate_gate(gate_id)
        state = self.journal.gate(gate_id)
        state.evidence = evidence
        failing = [item for item, ev in evidence.items() if not ev.ok]
        if go and failing and not (override and override.strip()):
            self.journal.add_audit(by, f"GO refused at {gate_id}: failing {', '.join(failing)}")
            self.save()
            raise Refused(
                f"GO refused at {gate_id}: "
                + "; ".join(f"{item}: {evidence[item].detail}" for item in failing)
                + ". Fix them, or decide with an override reason."
            )
        state.decision = "GO" if go else "NO-GO"
        state.by, state.at, state.note = by, utcnow(), note
        state.override = override if go and failing else None
        what = f"decided {state.decision} at {gate_id}"
        if state.override:
            what += f" with override ({state.override}) of {', '.join(failing)}"
        self.journal.add_audit(by, what + (f": {note}" if note else ""))
        self.save()
        self.log(f"{by} {what}", "warning" if state.override or not go else "info")
        return evidence

    # ---- rollbacks ------------------------------------------------------------------------

    def preview_rollback(self, phase_id: str) -> list[tuple[str, list[PlannedCall]]]:
        rollback = self.runbook.rollback_for(phase_id)
        if rollback is None:
            raise BadRequest(f"no rollback is defined for phase {phase_id!r}")
        actions = action_registry()
        return [
            (
                rs.title or rs.action,
                actions[rs.action].plan(
                    self.runbook, actions[rs.action].params.model_validate(rs.params)
                ),
            )
            for rs in rollback.steps
        ]

    def rollback(self, phase_id: str, by: str, confirm: Confirm | None = None) -> Outcome:
        rollback = self.runbook.rollback_for(phase_id)
        if rollback is None:
            raise BadRequest(f"no rollback is defined for phase {phase_id!r}")
        if rollback.destructive and confirm is not None and not confirm(rollback.title, phase_id):
            return Outcome("declined", message="rollback not confirmed; nothing was changed")
        self._stop.clear()
        record = next(
            (r for r in self.journal.rollbacks if r.id == rollback.id and r.status != "done"), None
        )
        if record is None:
            # a rollback done before starts over: its earlier step states are history
            for key in [k for k in self.journal.rollback_steps if k.startswith(f"{rollback.id}#")]:
                del self.journal.rollback_steps[key]
            record = RollbackRecord(id=rollback.id, phase=phase_id, by=by, started_at=utcnow())
            self.journal.rollbacks.append(record)
        record.status = "running"
        self.journal.add_audit(by, f"rollback {rollback.id} for {phase_id} started")
        self.save()
        self.log(f"{by} started rollback {rollback.id}: {rollback.title}", "warning")
        actions = action_registry()
        while record.step_index < len(rollback.steps):
            rstep = rollback.steps[record.step_index]
            key = f"{rollback.id}#{record.step_index}"
            state = self.journal.rollback_steps.setdefault(key, StepState())
            state.status, state.attempts = "running", state.attempts + 1
            state.started_at = state.started_at or utcnow()
            self.emit(StepStarted(key, rstep.title or rstep.action, state.attempts))
            action = actions[rstep.action]
            try:
                state.summary = action.run(
                    self._context(key, state), action.params.model_validate(rstep.params)
                )
            except Interrupted:
                self.save()
                self.emit(StepFinished(key, "interrupted", {}))
                return Outcome("interrupted", message=f"rollback {rollback.id} interrupted")
            except Exception as exc:  # a failed rollback step stays resumable
                state.status = "failed"
                record.status, record.error = "failed", f"{type(exc).__name__}: {exc}"
                self.journal.add_audit(by, f"rollback {rollback.id} failed: {record.error}")
                self.save()
                self.log(f"rollback step {key} failed: {record.error}", "error", key)
                self.emit(StepFinished(key, "failed", {}, record.error))
                return Outcome("failed", failed_step=key, message=record.error)
            state.status, state.finished_at = "done", utcnow()
            record.summary[key] = rstep.action
            record.step_index += 1
            self.save()
            self.emit(StepFinished(key, "done", state.summary))
        self._mark_rolled_back(rollback.phases, rollback.undoes, by)
        record.status, record.finished_at = "done", utcnow()
        self.journal.add_audit(by, f"rollback {rollback.id} done")
        self.save()
        self.log(
            f"rollback {rollback.id} done; gates before {', '.join(rollback.phases)} "
            "must be decided again",
            "warning",
        )
        return Outcome("done", message=f"rollback {rollback.id} done")

    def _mark_rolled_back(self, phases: list[str], undoes: list[str], by: str) -> None:
        """Rolled-back steps run again from scratch on the next run (their resume state is
        cleared: what they applied was undone). Gates before those phases, and every decided
        gate after the first rolled-back step, must be decided again: their evidence is stale."""
        sequence = self.sequence()
        first: int | None = None
        for step in self.runbook.steps:
            state = self.journal.steps.get(step.id)
            wanted = step.phase in phases or step.id in undoes
            if wanted and state and state.status in ("done", "failed", "running"):
                self.journal.add_audit(
                    by, f"step {step.id} rolled back (was {state.status}: {state.summary})"[:300]
                )
                self.journal.steps[step.id] = StepState(
                    status="rolled_back", attempts=state.attempts
                )
                index = sequence.index(("step", step.id))
                first = index if first is None else min(first, index)
        later: set[str] = set()
        if first is not None:
            later = {node_id for kind, node_id in sequence[first:] if kind == "gate"}
        for gate in self.runbook.gates:
            state = self.journal.gates.get(gate.id)
            if (gate.before_phase in phases or gate.id in later) and state and state.decision:
                self.journal.add_audit(
                    by, f"gate {gate.id} reopened by rollback (was {state.decision} by {state.by})"
                )
                state.decision = state.by = state.at = state.override = None
                state.note = ""

    # ---- status ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The `runbook status --json` contract."""
        run = self.journal.run
        steps = []
        for step in self.runbook.steps:
            state = self.journal.steps.get(step.id) or StepState()
            steps.append(
                {
                    "id": step.id,
                    "phase": step.phase,
                    "kind": step.kind,
                    "title": step.title,
                    "slot": step.slot,
                    "status": state.status,
                    "attempts": state.attempts,
                    "started_at": state.started_at,
                    "finished_at": state.finished_at,
                    "progress": {
                        t: {"done": p.done, "total": p.total} for t, p in state.progress.items()
                    },
                    "summary": state.summary,
                    "error": state.error,
                }
            )
        gates = []
        for gate in self.runbook.gates:
            state = self.journal.gates.get(gate.id)
            items = []
            for item in gate.items:
                if item.kind == "manual":
                    ok: bool | None = bool(state and item.id in state.ticks)
                else:
                    ev = state.evidence.get(item.id) if state else None
                    ok = ev.ok if ev else None
                items.append({"id": item.id, "kind": item.kind, "ok": ok, "text": item.text})
            gates.append(
                {
                    "id": gate.id,
                    "decision": state.decision if state else None,
                    "by": state.by if state else None,
                    "at": state.at if state else None,
                    "override": state.override if state else None,
                    "items": items,
                }
            )
        return {
            "run": {
                "runbook_id": run.runbook_id,
                "runbook_sha256": run.runbook_sha256,
                "operator": run.operator,
                "started_at": run.started_at,
                "migration_ts": run.migration_ts,
                "target": run.target.model_dump(),
                "journal": str(self.store.path),
            },
            "steps": steps,
            "gates": gates,
            "waiting": self.waiting(),
            "rollbacks": [r.model_dump() for r in self.journal.rollbacks],
        }


def plan_calls(runbook: Runbook) -> list[tuple[Node, list[PlannedCall]]]:
    """`runbook plan`: every node with the calls it would make. No I/O at all."""
    actions = action_registry()
    out: list[tuple[Node, list[PlannedCall]]] = []
    for kind, node_id in runbook.sequence():
        if kind == "gate":
            gate = runbook.gate(node_id)
            out.append(
                (
                    (kind, node_id),
                    [
                        PlannedCall("gate", item.check or "operator tick", item.id, item.text)
                        for item in gate.items
                    ],
                )
            )
            continue
        step = runbook.step(node_id)
        if step.kind == "manual":
            out.append(
                (
                    (kind, node_id),
                    [PlannedCall("operator", "acknowledge", step.id, step.instructions[:60])],
                )
            )
            continue
        action = actions[step.action or ""]
        out.append(
            ((kind, node_id), action.plan(runbook, action.params.model_validate(step.params)))
        )
    return out
