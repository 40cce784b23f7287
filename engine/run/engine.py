"""The Engine: walks the runbook, runs actions, and emits events. It is a RunCore (the run's
journal, events and clock, engine/run/core.py); its gate commands (engine/run/gates.py) and
rollbacks (engine/run/rollback.py) are objects it delegates to.

Both the CLI and the TUI drive this class; neither holds migration logic of its own. It offers
the engine's commands (`EngineCommands`, engine/core/commands.py).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from engine.actions import registry as action_registry
from engine.core.abandon import run_abandonable
from engine.core.clock import Interrupted
from engine.core.commands import Caller, GateEvidence, RollbackPreview
from engine.core.context import NeedsAcceptance, RollBackNow
from engine.core.events import RunStopped, StepFinished, StepStarted
from engine.core.outcome import BadRequest, CommandRefused, Confirm, Outcome
from engine.core.views import NodeRef
from engine.run.core import RunCore
from engine.run.drift import flag_drift
from engine.run.gates import Gates
from engine.run.rollback import Rollbacks
from engine.run.snapshot import awaits_acceptance, next_destructive
from engine.runbook.model import Step
from engine.state.journal import StepState, now


class Engine(RunCore):
    def __post_init__(self) -> None:
        super().__post_init__()
        self.gates = Gates(self)
        self.rollbacks = Rollbacks(self)

    # ---- the commands of a human: the gates' and the rollbacks' -------------------------------

    def evaluate_gate(self, gate_id: str) -> GateEvidence:
        return self.gates.evaluate(gate_id)

    def tick(
        self, gate_id: str, item_id: str, by: str, note: str = "", caller: Caller | None = None
    ) -> None:
        self.gates.tick(gate_id, item_id, by, note, caller)

    def untick(self, gate_id: str, item_id: str, by: str, caller: Caller | None = None) -> None:
        self.gates.untick(gate_id, item_id, by, caller)

    def ack(self, step_id: str, by: str, note: str = "", caller: Caller | None = None) -> None:
        self.gates.ack(step_id, by, note, caller)

    def decide(
        self,
        gate_id: str,
        go: bool,
        by: str,
        note: str = "",
        override: str | None = None,
        caller: Caller | None = None,
    ) -> GateEvidence:
        return self.gates.decide(gate_id, go, by, note, override, caller)

    def preview_rollback(self, phase_id: str) -> RollbackPreview:
        return self.rollbacks.preview(phase_id)

    def rollback(
        self,
        phase_id: str,
        by: str,
        confirm: Confirm | None = None,
        caller: Caller | None = None,
    ) -> Outcome:
        return self.rollbacks.run(phase_id, by, confirm, caller)

    # ---- running --------------------------------------------------------------------------

    def run(
        self,
        until: str | None = None,
        only: str | None = None,
        confirm: Confirm | None = None,
        pause_before_destructive: bool = False,
        approved: str | None = None,
    ) -> Outcome:
        """Run steps in order until done, a human is needed, a step fails, or a stop.

        `pause_before_destructive` (the console): stop short of a destructive step other than
        `approved`, so the operator is asked before the engine runs it, never while it runs."""
        with self.working():
            self._record_driver()
            if drift := flag_drift(self.runbook, self.journal, self.clients):  # robust
                self.log(drift, "error")
                return Outcome("waiting", message=drift)
            self._reopen_unsound()
            if only is not None:
                outcome = self._run_only(only, confirm)
            else:
                outcome = self._run(until, confirm, pause_before_destructive, approved)
        self.emit(self._stopped(outcome))  # notifications: a wait, a failure, the end
        return outcome

    def _record_driver(self) -> None:
        """The verified identity driving the run (a gate's `approver_not_operator`): its OS
        user, and its STS identity when known already (a real account's is asked at open;
        this thread never waits on STS: a hung endpoint must not hold the first step)."""
        driver = self.identify(ask=False)
        if self.journal.run.driver != driver:
            with self.io_lock:
                self.journal.run.driver = driver
                self.journal.add_audit(self.options.operator, "drives the run", driver)

    def _stopped(self, outcome: Outcome) -> RunStopped:
        node = outcome.waiting
        return RunStopped(
            outcome.status,
            node.kind if node else None,
            node.id if node else None,
            outcome.failed_step,
            outcome.message,
            finished=self.next_node() is None,
        )

    def _run(
        self,
        until: str | None,
        confirm: Confirm | None,
        pause_before_destructive: bool,
        approved: str | None,
    ) -> Outcome:
        if pause_before_destructive:
            held = next_destructive(self.runbook, self.journal, after=approved)
            confirm = confirm or (lambda step_id, token: step_id == approved)
        else:
            held = None
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
                    self.evaluate_gate(node_id)  # what waits there is shown with its evidence
                    return Outcome("waiting", NodeRef.gate(node_id), message=gate.title)
                if until == node_id:
                    return Outcome("done", message=f"stopped at gate {node_id} (--until)")
                continue
            if node_id == held and not self.node_satisfied(node):
                return Outcome(
                    "paused",
                    NodeRef.step(node_id),
                    message=f"{node_id} is destructive: confirm it to go on",
                )
            if not self.node_satisfied(node):
                outcome = self._run_step(self.runbook.step(node_id), confirm)
                if outcome is not None:
                    return outcome
            if until == node_id:
                return Outcome("done", message=f"reached {node_id} (--until)")
        return Outcome("done", message="every step is done")

    def _reopen_unsound(self) -> None:
        """A step marked done on a premise its action now rejects (a short scan, say) runs
        again: journaled, logged, its cursors cleared (its writes are idempotent)."""
        reopened = False
        for step in self.runbook.steps:
            state = self.journal.steps.get(step.id)
            action = action_registry().get(step.action or "")
            if state is None or state.status != "done" or action is None or not action.unsound:
                continue
            why = action.unsound(state.summary)
            if why is None:
                continue
            state.status, state.cursors, state.summary = "pending", {}, {}
            self.journal.add_audit(self.options.operator, f"reopened {step.id}: {why}")
            self.log(f"{step.id} was marked done, but {why}: reopened", "warning", step.id)
            reopened = True
        if reopened:
            self.save()

    def _run_only(self, step_id: str, confirm: Confirm | None) -> Outcome:
        sequence = self.sequence()
        if ("step", step_id) not in sequence:
            raise BadRequest(f"--only {step_id!r} is not a step of this runbook")
        before = sequence[: sequence.index(("step", step_id))]
        pending = [n for n in before if not self.node_satisfied(n)]
        if pending:
            kind, node_id = pending[0]
            raise CommandRefused(
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
            return Outcome("waiting", NodeRef.step(step.id), message=step.title)
        if awaits_acceptance(state) and state.acked_by:  # its findings were accepted
            accepted = {**state.summary, "accepted_by": state.acked_by}
            self._finish(step, state, "done", accepted)
            return None
        if step.requires_gate and self.journal.gate(step.requires_gate).decision != "GO":
            self._fail(step, state, f"refused: gate {step.requires_gate} is not GO")
            return Outcome("failed", failed_step=step.id, message=state.error or "")
        answer = confirm(step.id, step.phase) if step.destructive and confirm else True
        if answer is None:  # asked, not answered yet: nobody declined anything
            self.log(f"{step.id}: waiting for confirmation; nothing was changed", "info", step.id)
            return Outcome("declined", message=f"{step.id} waits for confirmation")
        if not answer:
            self.log(f"{step.id}: not confirmed; nothing was changed", "warning", step.id)
            return Outcome("declined", message=f"{step.id} was not confirmed")
        return self._execute(step, state)

    def _execute(self, step: Step, state: StepState) -> Outcome | None:
        action = action_registry()[step.action or ""]
        resumed = state.status == "running"
        state.needs_acceptance = False
        state.acked_by = state.acked_at = state.ack_note = None
        state.status = "running"
        state.attempts += 1
        state.started_at = state.started_at if resumed else now()
        state.finished_at = None
        state.error = None
        self.journal.add_audit(
            self.options.operator, f"{'resumed' if resumed else 'started'} {step.id}"
        )
        self.save()
        self.emit(StepStarted(step.id, step.title, state.attempts, resumed))
        ctx = self.context_for(step.id, state)
        try:
            body = partial(action.run, ctx, step.bound)
            result = run_abandonable(body, self._stop)  # robust: a stop abandons a hung call
            summary = action.summary_dict(result, f"steps.{step.id}.summary")
        except Interrupted:
            state.checkpoint_at = now()
            self.journal.add_audit(self.options.operator, f"interrupted {step.id}")
            self.save()
            self.emit(StepFinished(step.id, "interrupted", {}))
            return Outcome("interrupted", message=f"{step.id} interrupted; its checkpoint is saved")
        except NeedsAcceptance as exc:
            state.summary = exc.summary
            state.needs_acceptance = True
            self._fail(step, state, str(exc))
            return Outcome("waiting", NodeRef.step(step.id), message=str(exc))
        except RollBackNow as exc:
            self._fail(step, state, str(exc))
            return self._auto_rollback(exc)
        except Exception as exc:  # any action failure becomes a failed step, never a crash
            self._fail(step, state, f"{type(exc).__name__}: {exc}")
            return Outcome("failed", failed_step=step.id, message=state.error or "")
        self._finish(step, state, "done", summary)
        return None

    def _auto_rollback(self, fired: RollBackNow) -> Outcome:
        """A trigger that rolls back on its own: run the rollback now, then wait where the
        run must be decided again (the reopened gate), never go on past the failed step."""
        outcome = self.rollbacks.carry_out(fired.rollback_phase, fired.by, automatic=True)
        if outcome.status != "done":
            return outcome
        message = f"{fired}; done: decide again before going on"
        for node in self.sequence():
            if not self.node_satisfied(node):
                return Outcome("waiting", NodeRef.of(node), message=message)
        return Outcome("done", message=message)

    def _finish(self, step: Step, state: StepState, status: str, summary: dict[str, Any]) -> None:
        state.status = status  # type: ignore[assignment]
        state.summary = summary
        state.finished_at = now()
        state.started_at = state.started_at or state.finished_at
        self.journal.add_audit(self.options.operator, f"{status} {step.id}")
        self.save()
        self.emit(StepFinished(step.id, status, summary))

    def _fail(self, step: Step, state: StepState, error: str) -> None:
        state.status = "failed"
        state.error = error
        state.finished_at = now()
        self.journal.add_audit(self.options.operator, f"failed {step.id}: {error}")
        self.save()
        self.log(f"{step.id} failed: {error}", "error", step.id)
        self.emit(StepFinished(step.id, "failed", {}, error))
