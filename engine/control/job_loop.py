"""The detached engine's loop: runs the runbook in its own thread of control and carries out
the operator's commands that arrive through the control socket.

One job at a time runs on the engine's main thread (the run, or a rollback). When the run stops
for a human (a gate, a manual step, a failure, a destructive step without consent) the engine
stays up and idle; `decide`, `ack` and `resume` set it going again. It ends when every step is
done (or `--until` / `--only` is reached), or on `stop` (a checkpoint, then exit 130).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.control import protocol
from engine.control.fanout import Fanout
from engine.control.throttle import OperatorThrottle
from engine.core.commands import (
    Activity,
    Caller,
    ControlState,
    GateEvidence,
    LastOutcome,
    RollbackPreview,
    ThrottleView,
)
from engine.core.outcome import BadRequest, CommandRefused, Outcome
from engine.core.views import RunSnapshot
from engine.run.engine import Engine

IDLE: Activity = "idle"
RUNNING: Activity = "running"
ROLLING_BACK: Activity = "rolling back"
STOPPING: Activity = "stopping"
STARTING: Activity = "starting"


@dataclass
class Job:
    name: str
    body: Callable[[], Outcome]
    done: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None
    error: BaseException | None = None


class DetachedRun:
    """The detached engine: `EngineCommands` (its engine's) and `ControlCommands`, for the
    control server (engine/control/requests.py)."""

    def __init__(
        self,
        engine: Engine,
        until: str | None = None,
        only: str | None = None,
        consent: bool = False,
        socket: str = "",
    ) -> None:
        self.engine = engine
        self.until, self.only = until, only
        self.socket = socket
        # in_flight goes to the engine's write throttle (engine/core/throttle.py)
        self.operator_throttle = OperatorThrottle(engine.write_throttle, self.publish_control)
        self.fanout = Fanout(engine)
        engine.boundary = self._boundary
        engine.hold = self.operator_throttle.in_wait  # a pause holds inside waits too
        engine.subscribe(self.fanout)
        self._consent = consent  # `--yes` / `resume --yes`: every destructive step
        self._approved: str | None = None  # the one destructive step an operator confirmed
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._lock = threading.Lock()  # guards activity and the queued run
        self._activity: Activity = STARTING
        self._run_queued = False
        self._stopping = threading.Event()
        self.last: Outcome | None = None

    # ---- the engine's main thread --------------------------------------------------------------

    def _boundary(self, stop: threading.Event, writes: int) -> None:
        self.operator_throttle.at_boundary(stop, writes)
        if self._stopping.is_set():  # a stop that came while run() was starting (it clears it)
            stop.set()

    def serve(self) -> Outcome:
        """Run jobs until the run is over or stopped; returns the final outcome."""
        self.kick()
        while True:
            try:
                job = self._jobs.get(timeout=0.5)
            except queue.Empty:
                if self._stopping.is_set():
                    break
                continue
            if job is None or self._stopping.is_set():
                if job is not None:
                    job.error = CommandRefused("the engine is stopping")
                    job.done.set()
                break
            outcome = self._execute(job)
            if self._stopping.is_set() or (job.name == "run" and outcome.status == "done"):
                break
        final = self.last or Outcome("interrupted")
        if self._stopping.is_set() and final.status != "done":
            final = Outcome("interrupted", message="stopped by the operator; checkpoint saved")
        self._set_activity(STOPPING)
        self.fanout.end(
            protocol.message("end", {"outcome": final.status, "message": final.message})
        )
        return final

    def _execute(self, job: Job) -> Outcome:
        self._set_activity(ROLLING_BACK if job.name.startswith("rollback") else RUNNING)
        try:
            outcome = job.body()
        except Exception as exc:  # a command error ends the job, never the engine
            self.engine.log(f"{job.name}: {type(exc).__name__}: {exc}", "error")
            job.error = exc
            outcome = Outcome("failed", message=str(exc))
        job.outcome = self.last = outcome
        self._set_activity(IDLE)
        job.done.set()
        if outcome.status == "declined":
            self.engine.log(
                "a destructive step waits for consent: confirm it in an attached console (r), "
                "or `runbook resume --yes` to go on",
                "warning",
            )
        return outcome

    def _set_activity(self, activity: Activity) -> None:
        with self._lock:
            self._activity = activity
        self.publish_control()

    def kick(self) -> None:
        """Queue the run (once) to go on from where it stands."""
        with self._lock:
            if self._run_queued or self._stopping.is_set():
                return
            self._run_queued = True

        def run() -> Outcome:
            with self._lock:
                self._run_queued = False
            return self.engine.run(until=self.until, only=self.only, confirm=self._confirm)

        self._jobs.put(Job("run", run))

    def _confirm(self, step_id: str, _token: str) -> bool | None:
        """Whether the destructive step may run now: a blanket consent (`--yes`), or the
        operator confirmed this very step; that confirmation is spent on it (the next
        destructive step asks again, as the local console does). None: not answered yet."""
        with self._lock:
            if self._consent:
                return True
            if self._approved == step_id:
                self._approved = None
                return True
            return None

    # ---- what the operator sees ------------------------------------------------------------

    def control_state(self) -> ControlState:
        settings = self.operator_throttle.settings
        with self._lock:
            activity = self._activity
        throttle = self.operator_throttle
        pause = "paused" if throttle.held else "pausing" if throttle.paused else None
        last = self.last
        return ControlState(
            pid=os.getpid(),
            socket=self.socket,
            activity=STOPPING if self._stopping.is_set() else activity,
            pause=pause,
            consent=self._consent,
            approved=self._approved,
            throttle=ThrottleView(
                rate=settings.rate,
                in_flight=settings.in_flight,
                segments=settings.segments,
                in_flight_applied=settings.in_flight_applied,
                capacity_share=settings.capacity_share,
                text=settings.describe(),
            ),
            last=LastOutcome(status=last.status, message=last.message) if last else None,
        )

    def publish_control(self) -> None:
        self.fanout.publish("control", protocol.control_message(self.control_state()))

    def _record(self, by: str, what: str, caller: Caller | None) -> None:
        """Journal what the operator did (audit, with the verified identity) and tell the log
        and the watchers."""
        who = self.engine.identify(caller)
        self.engine.journal.add_audit(by, what, who)
        self.engine.save()
        self.engine.log(f"{by}: {what} (as {who.principal})", "warning")
        self.publish_control()

    # ---- commands (server threads) -----------------------------------------------------------

    def pause(self, by: str, caller: Caller | None = None) -> str:
        if not self.operator_throttle.pause():
            return "already paused"
        self._record(by, "paused the run at its next batch boundary", caller)
        return "pausing at the next batch boundary (a checkpoint); `runbook resume` goes on"

    def resume(
        self,
        by: str,
        consent: bool = False,
        approve: str | None = None,
        caller: Caller | None = None,
    ) -> str:
        """`consent`: every destructive step of this engine (`resume --yes`); `approve`: the
        one destructive step the operator has just confirmed (an attached console)."""
        if approve is not None:
            step = self.engine.runbook.find_step(approve)
            if step is None or not step.destructive:
                raise BadRequest(f"{approve!r} is not a destructive step of this runbook")
        resumed = self.operator_throttle.resume()
        if consent and not self._consent:
            self._consent = True
            self._record(by, "consented to the destructive steps of this detached run", caller)
        if approve is not None and not self._consent:
            with self._lock:
                self._approved = approve
            self._record(by, f"confirmed destructive step {approve} (that step only)", caller)
        if resumed:
            self._record(by, "resumed the run", caller)
        with self._lock:
            idle = self._activity == IDLE
        if idle:
            self.kick()  # carry on from where it stands (a failed step is tried again)
        return "resumed" if resumed or idle else "not paused; nothing to resume"

    def signal_stop(self) -> None:
        """SIGTERM/SIGINT: only sets events (safe in a signal handler); the loop sees it."""
        self._stopping.set()
        self.engine.request_stop()

    def stop(self, by: str, caller: Caller | None = None) -> str:
        self._stopping.set()
        self.engine.request_stop()
        self._jobs.put(None)
        self._record(by, "stopped the detached engine (checkpoint, then exit)", caller)
        return "stopping: the step checkpoints and the engine exits"

    def throttle(self, by: str, caller: Caller | None = None, **changes: float | int | None) -> str:
        settings = self.operator_throttle.set_throttle(**changes)
        self._record(by, f"throttle: {settings.describe()}", caller)
        note = ""
        if "in_flight" in changes and not settings.in_flight_applied:
            note = " (in-flight recorded; this build's writers have no in-flight limit yet)"
        return settings.describe() + note

    def ping(self) -> int:
        return os.getpid()

    def snapshot(self) -> RunSnapshot:
        return self.engine.snapshot()

    def tick(
        self, gate_id: str, item_id: str, by: str, note: str = "", caller: Caller | None = None
    ) -> None:
        self.engine.tick(gate_id, item_id, by, note, caller)

    def untick(self, gate_id: str, item_id: str, by: str, caller: Caller | None = None) -> None:
        self.engine.untick(gate_id, item_id, by, caller)

    def evaluate_gate(self, gate_id: str) -> GateEvidence:
        return self.engine.evaluate_gate(gate_id)

    def set_time_scale(self, scale: float, by: str) -> None:
        self.engine.set_time_scale(scale, by)

    def ack(self, step_id: str, by: str, note: str = "", caller: Caller | None = None) -> None:
        self.engine.ack(step_id, by, note, caller)
        self.kick()

    def decide(
        self,
        gate_id: str,
        go: bool,
        by: str,
        note: str = "",
        override: str | None = None,
        caller: Caller | None = None,
    ) -> GateEvidence:
        evidence = self.engine.decide(
            gate_id, go=go, by=by, note=note, override=override, caller=caller
        )
        if go:
            self.kick()
        return evidence

    def preview_rollback(self, phase_id: str) -> RollbackPreview:
        return self.engine.preview_rollback(phase_id)

    def rollback(self, phase_id: str, by: str, caller: Caller | None = None) -> Outcome:
        """Consent was given by the client (typed, or --yes); runs on the engine's thread."""
        with self._lock:
            busy = self._activity != IDLE or self._run_queued
        if busy or self._stopping.is_set():
            raise CommandRefused(
                "the engine is busy running the plan; a rollback starts when it waits: "
                "`runbook pause` does not free it, `runbook stop` does (then roll back)"
            )
        self.engine.preview_rollback(phase_id)  # an unknown phase fails here, with its message
        job = Job(
            f"rollback {phase_id}",
            lambda: self.engine.rollback(
                phase_id, by, confirm=lambda _what, _token: True, caller=caller
            ),
        )
        self._jobs.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.outcome is not None
        return job.outcome
