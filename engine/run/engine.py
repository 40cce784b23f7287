"""The Engine: walks the runbook, runs actions, and emits events; its gate commands
(engine/run/gates.py) and rollbacks (engine/run/rollback.py) are mixins it inherits.

Both the CLI and the TUI drive this class; neither holds migration logic of its own.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from engine.actions import registry as action_registry
from engine.aws.target import Connection
from engine.core.abandon import run_abandonable
from engine.core.clock import MAX_TIME_SCALE, Boundary, Clock, Hold, Interrupted
from engine.core.context import ActionContext, NeedsAcceptance, RollBackNow
from engine.core.events import (
    Alert,
    Event,
    LogLine,
    Progress,
    SnapshotChanged,
    StepFinished,
    StepStarted,
    Subscriber,
    as_log_line,
    format_log_line,
)
from engine.core.outcome import BadRequest, CommandRefused, Confirm, Outcome
from engine.core.throttle import WriteThrottle
from engine.core.views import NodeRef, RunSnapshot
from engine.core.world import REAL_ACCOUNT, World
from engine.plan.calls import Node
from engine.run.drift import flag_drift
from engine.run.gates import GateCommands
from engine.run.resume_check import check_resume_state
from engine.run.rollback import RollbackCommands
from engine.run.snapshot import (
    Rates,
    awaits_acceptance,
    build_snapshot,
    next_destructive,
    next_node,
    node_satisfied,
    waiting_for,
)
from engine.runbook.model import Runbook, Step
from engine.state.files import append_private
from engine.state.journal import (
    Journal,
    JournalStore,
    StepState,
    now,
    utcnow,
)


@dataclass
class EngineOptions:
    operator: str
    time_scale: float = 1.0
    world: World = REAL_ACCOUNT  # a rehearsal plugs its own in (engine/rehearsal/world.py)
    real_account: bool = False  # a real AWS account: its clock is never scaled
    mapping_overrides: Path | None = None


@dataclass
class Engine(GateCommands, RollbackCommands):
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
    _active: bool = False  # run() or rollback() is on its way (in some thread)
    _rates: Rates = field(default_factory=dict)  # the latest items/s and ETA per step and table
    _held: str | None = None  # why the checkpoint being written waits (S3 unreachable), or None
    clock_now: Callable[[], datetime] = now  # when evidence is taken (frozen in snapshot tests)
    # detach: pause and pace at every batch boundary (engine/control/tuning.py), or None
    boundary: Boundary | None = None
    hold: Hold | None = None  # detach: waits stand still while paused

    def __post_init__(self) -> None:
        check_resume_state(self.runbook, self.journal)  # a broken cursor: one line, exit 2
        self.store.bind_stop(self._stop)  # a checkpoint held on S3 gives up at a stop
        self.store.on_hold = self._checkpoint_held
        owner = getattr(self.clients, "__self__", None)
        if isinstance(owner, Connection):  # a stop also ends botocore's retry backoff
            owner.stop_retries_on(self._stop)

    # ---- events -------------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    def emit(self, event: Event) -> None:
        if isinstance(event, Progress):
            self._rates[(event.step_id, event.table)] = (
                event.rate,
                event.eta_seconds,
                event.capacity,
            )
        elif isinstance(event, StepStarted):
            self._rates = {k: v for k, v in self._rates.items() if k[0] != event.step_id}
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
        # robust: no symlink followed, 0600, control characters escaped (one event, one line)
        append_private(self.store.log_path, format_log_line(line, utcnow()) + "\n")

    def save(self) -> None:
        """Persist the journal, then send every subscriber the run as it now stands."""
        with self._io_lock:
            self.store.save(self.journal)
            self._held = None
            snapshot = self.snapshot()
        self._publish(snapshot)

    def _checkpoint_held(self, why: str) -> None:
        """The store cannot make a checkpoint durable yet and retries: the step holds there,
        and every view says so (the status line, the log)."""
        self._held = why
        self.log(why, "warning")
        self._publish(self.snapshot())

    def set_time_scale(self, scale: float, by: str) -> None:
        """Change a rehearsal's clock, now (a running wait follows at its next tick); journaled
        so plan time is counted per stretch. A real account stays at real time."""
        if self.options.real_account:
            raise CommandRefused("a real account runs at real time; the clock stays as it is")
        if not math.isfinite(scale) or not 0 < scale <= MAX_TIME_SCALE:
            raise BadRequest(f"the time scale must be above 0 and at most {MAX_TIME_SCALE:,.0f}")
        before = self.options.time_scale  # the clock in effect
        if scale == before:
            return
        with self._io_lock:
            self.journal.run.time_scale = before
            self.journal.run.change_scale(scale, by)
            self.options.time_scale = scale
            self.journal.add_audit(by, f"time scale x{before:g} -> x{scale:g}")
        self.log(f"{by} set the rehearsal clock to x{scale:g} (was x{before:g})")
        self.save()

    def _publish(self, snapshot: RunSnapshot) -> None:
        for subscriber in list(self._subscribers):
            subscriber(SnapshotChanged(snapshot))

    def snapshot(
        self, driver: str | None = None, active: bool | None = None, rates: Rates | None = None
    ) -> RunSnapshot:
        """The run as it stands, immutable. `active`: whether an engine runs it now (default:
        this one); a viewer passes whether another process drives, and the rates it measured."""
        with self._io_lock:
            return build_snapshot(
                self.runbook,
                self.journal,
                active=self._active if active is None else active,
                rates=dict(self._rates) if rates is None else rates,
                journal_path=str(self.store.path),
                driver=driver,
            ).model_copy(update={"checkpoint_held": self._held})

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
        return node_satisfied(self.journal, node)

    def next_node(self) -> NodeRef | None:
        return next_node(self.runbook, self.journal)

    def waiting(self) -> NodeRef | None:
        """The human decision the run waits for, if any."""
        return waiting_for(self.runbook, self.journal)

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
        self._stop.clear()
        self._active = True
        try:
            if drift := flag_drift(self.runbook, self.journal, self.clients):  # robust
                self.log(drift, "error")
                return Outcome("waiting", message=drift)
            self._reopen_unsound()
            if only is not None:
                return self._run_only(only, confirm)
            return self._run(until, confirm, pause_before_destructive, approved)
        finally:
            self._active = False
            self._publish(self.snapshot())

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

    def _context(self, step_id: str, state: StepState) -> ActionContext:
        return ActionContext(
            step_id=step_id,
            runbook=self.runbook,
            journal=self.journal,
            state=state,
            clients=self.clients,
            # follows set_time_scale; detach: pause and pace at each batch boundary
            clock=Clock(lambda: self.options.time_scale, self._stop, self.boundary, self.hold),
            artifacts_dir=self.store.artifacts_dir,
            emit=self.emit,
            save=self.save,
            world=self.options.world,
            operator=self.options.operator,
            mapping_overrides=self.options.mapping_overrides,
            throttle=self.write_throttle,
        )

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
        ctx = self._context(step.id, state)
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
        outcome = self._rollback(fired.rollback_phase, fired.by)
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

    # ---- status ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The `runbook status --json` contract: the snapshot, serialised."""
        return self.snapshot().model_dump(mode="json")
