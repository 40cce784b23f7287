"""The Engine's rollbacks: preview, run (resumable, step by step), then mark what they undid.

An object the Engine delegates to; it works on the run's core (engine/run/core.py).
"""

from __future__ import annotations

from functools import partial

from engine.actions import registry as action_registry
from engine.core.abandon import run_abandonable
from engine.core.clock import Interrupted
from engine.core.commands import Caller, RollbackPreview, RollbackStepPreview
from engine.core.events import RollbackChanged, StepFinished, StepStarted
from engine.core.outcome import BadRequest, CommandRefused, Confirm, Outcome
from engine.run.core import RunCore
from engine.run.drift import reopen_overwritten
from engine.runbook.model import Rollback
from engine.state.identity import Identity
from engine.state.journal import RollbackRecord, StepState, now


class Rollbacks:
    """Undo a phase with the runbook's `[[rollbacks]]`; gates before it are decided again."""

    def __init__(self, core: RunCore) -> None:
        self.core = core

    def preview(self, phase_id: str) -> RollbackPreview:
        rollback = self.core.runbook.rollback_for(phase_id)
        if rollback is None:
            raise BadRequest(f"no rollback is defined for phase {phase_id!r}")
        actions = action_registry()
        steps = (
            RollbackStepPreview(
                title=rs.title or rs.action,
                calls=tuple(
                    c.render() for c in actions[rs.action].plan(self.core.runbook, rs.bound)
                ),
            )
            for rs in rollback.steps
        )
        return RollbackPreview(phase=phase_id, steps=tuple(steps))

    def run(
        self,
        phase_id: str,
        by: str,
        confirm: Confirm | None = None,
        caller: Caller | None = None,
    ) -> Outcome:
        rollback = self.core.runbook.rollback_for(phase_id)
        if rollback is None:
            raise BadRequest(f"no rollback is defined for phase {phase_id!r}")
        who = self.core.identify(caller)
        if not self._reached(rollback):
            raise CommandRefused(
                f"phase {phase_id} has not been reached: its gate is not GO and no step it "
                "undoes has run, so there is nothing to roll back; nothing was changed"
            )
        if rollback.destructive and confirm is not None and not confirm(rollback.title, phase_id):
            return Outcome("declined", message="rollback not confirmed; nothing was changed")
        with self.core.working():
            return self.carry_out(phase_id, by, who)

    def _reached(self, rollback: Rollback) -> bool:
        """The run reached what the rollback undoes: a gate before its phases is GO, a step it
        undoes ran (done, failed or still running), or this rollback is unfinished."""
        for gate in self.core.runbook.gates:
            state = self.core.journal.gates.get(gate.id)
            if gate.before_phase in rollback.phases and state and state.decision == "GO":
                return True
        for step in self.core.runbook.steps:
            state = self.core.journal.steps.get(step.id)
            wanted = step.phase in rollback.phases or step.id in rollback.undoes
            if wanted and state and state.status in ("done", "failed", "running"):
                return True
        return any(r.id == rollback.id and r.status != "done" for r in self.core.journal.rollbacks)

    def carry_out(
        self, phase_id: str, by: str, who: Identity | None = None, automatic: bool = False
    ) -> Outcome:
        """The rollback itself, resumable step by step (consent was given). `who`: the
        verified identity that asked (an automatic one: the engine's own)."""
        record = self._record(phase_id, by, who or self.core.identify())
        index = self.core.journal.rollbacks.index(record)
        self.core.emit(RollbackChanged(record.id, phase_id, "started", by, automatic, index))
        outcome = self._carry_out(phase_id, by, record)
        status = {"done": "done", "interrupted": "interrupted"}.get(outcome.status, "failed")
        self.core.emit(
            RollbackChanged(
                record.id,
                phase_id,
                status,  # type: ignore[arg-type]
                by,
                automatic,
                index,
                record.error,
            )
        )
        return outcome

    def _record(self, phase_id: str, by: str, who: Identity) -> RollbackRecord:
        """This rollback's record: the unfinished one (resumed), or a new one (journaled)."""
        rollback = self.core.runbook.rollback_for(phase_id)
        assert rollback is not None
        record = next(
            (r for r in self.core.journal.rollbacks if r.id == rollback.id and r.status != "done"),
            None,
        )
        if record is None:
            # a rollback done before starts over: its earlier step states are history
            for key in [
                k for k in self.core.journal.rollback_steps if k.startswith(f"{rollback.id}#")
            ]:
                del self.core.journal.rollback_steps[key]
            record = RollbackRecord(
                id=rollback.id, phase=phase_id, by=by, started_at=now(), identity=who
            )
            self.core.journal.rollbacks.append(record)
        record.status = "running"
        self.core.journal.add_audit(by, f"rollback {rollback.id} for {phase_id} started", who)
        self.core.save()
        self.core.log(
            f"{by} started rollback {rollback.id}: {rollback.title} (as {who.principal})", "warning"
        )
        return record

    def _carry_out(self, phase_id: str, by: str, record: RollbackRecord) -> Outcome:
        rollback = self.core.runbook.rollback_for(phase_id)
        assert rollback is not None
        actions = action_registry()
        while record.step_index < len(rollback.steps):
            rstep = rollback.steps[record.step_index]
            key = f"{rollback.id}#{record.step_index}"
            state = self.core.journal.rollback_steps.setdefault(key, StepState())
            state.status, state.attempts = "running", state.attempts + 1
            state.started_at = state.started_at or now()
            self.core.emit(StepStarted(key, rstep.title or rstep.action, state.attempts))
            action = actions[rstep.action]
            try:
                body = partial(action.run, self.core.context_for(key, state), rstep.bound)
                result = run_abandonable(body, self.core.stop_event)  # robust
                state.summary = action.summary_dict(result, f"rollback_steps.{key}.summary")
            except Interrupted:
                self.core.save()
                self.core.emit(StepFinished(key, "interrupted", {}))
                return Outcome("interrupted", message=f"rollback {rollback.id} interrupted")
            except Exception as exc:  # a failed rollback step stays resumable
                state.status = "failed"
                record.status, record.error = "failed", f"{type(exc).__name__}: {exc}"
                self.core.journal.add_audit(by, f"rollback {rollback.id} failed: {record.error}")
                self.core.save()
                self.core.log(f"rollback step {key} failed: {record.error}", "error", key)
                self.core.emit(StepFinished(key, "failed", {}, record.error))
                return Outcome("failed", failed_step=key, message=record.error)
            state.status, state.finished_at = "done", now()
            record.summary[key] = rstep.action
            record.step_index += 1
            self.core.save()
            self.core.emit(StepFinished(key, "done", state.summary))
        self._mark_rolled_back(rollback.phases, rollback.undoes, by)
        record.status, record.finished_at = "done", now()
        self.core.journal.add_audit(by, f"rollback {rollback.id} done")
        self.core.save()
        self.core.log(
            f"rollback {rollback.id} done; gates before {', '.join(rollback.phases)} "
            "must be decided again",
            "warning",
        )
        return Outcome("done", message=f"rollback {rollback.id} done")

    def _mark_rolled_back(self, phases: list[str], undoes: list[str], by: str) -> None:
        """Rolled-back steps run again from scratch on the next run (their resume state is
        cleared: what they applied was undone). Gates before those phases, and every decided
        gate after the first rolled-back step, must be decided again: their evidence is stale."""
        sequence = self.core.sequence()
        first: int | None = None
        for step in self.core.runbook.steps:
            state = self.core.journal.steps.get(step.id)
            wanted = step.phase in phases or step.id in undoes
            if wanted and state and state.status in ("done", "failed", "running"):
                self.core.journal.add_audit(
                    by, f"step {step.id} rolled back (was {state.status}: {state.summary})"[:300]
                )
                self.core.journal.steps[step.id] = StepState(
                    status="rolled_back", attempts=state.attempts
                )
                index = sequence.index(("step", step.id))
                first = index if first is None else min(first, index)
        reopen_overwritten(
            self.core.runbook, self.core.journal, by
        )  # robust: re-runs overwrite later flags
        later: set[str] = set()
        if first is not None:
            later = {node_id for kind, node_id in sequence[first:] if kind == "gate"}
        for gate in self.core.runbook.gates:
            state = self.core.journal.gates.get(gate.id)
            if (gate.before_phase in phases or gate.id in later) and state and state.decision:
                self.core.journal.add_audit(
                    by, f"gate {gate.id} reopened by rollback (was {state.decision} by {state.by})"
                )
                for item_id, tick in state.ticks.items():  # the audit keeps the old ticks
                    self.core.journal.add_audit(
                        by, f"tick {gate.id}/{item_id} by {tick.by} at {tick.at} cleared (rollback)"
                    )
                state.decision = state.by = state.at = state.override = None
                state.note = ""
                state.ticks = {}
                state.evidence = {}  # stale: evaluated again before the next decision
