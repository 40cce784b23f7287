"""The Engine's gate and acknowledgement commands: evaluate, tick, untick, ack, decide.

An object the Engine delegates to; it works on the run's core (engine/run/core.py).
"""

from __future__ import annotations

from engine.checks import registry as check_registry
from engine.core.commands import Caller
from engine.core.outcome import BadRequest, CommandRefused
from engine.core.views import NodeRef
from engine.run.approvals import approval_problem, override_refusal, tick_refusal
from engine.run.core import RunCore
from engine.run.snapshot import awaits_acceptance
from engine.runbook.model import Gate
from engine.state.identity import Identity
from engine.state.journal import Evidence, StepState, Tick, now


class Gates:
    """Decisions a human makes while the run waits: every one journaled and audited."""

    def __init__(self, core: RunCore) -> None:
        self.core = core

    def evaluate(self, gate_id: str) -> dict[str, Evidence]:
        """Evaluate automatic items against the live target (recorded with the time, so every
        view, a read-only one too, shows the latest evidence); manual items by their ticks."""
        gate = self._gate(gate_id)
        state = self.core.journal.gate(gate_id)
        out: dict[str, Evidence] = {}
        measured: dict[str, Evidence] = {}
        for item in gate.items:
            if item.kind == "manual":
                tick = state.ticks.get(item.id)
                who = f" ({tick.identity.principal})" if tick and tick.identity else ""
                detail = f"ticked by {tick.by}{who} at {tick.at}" if tick else "not ticked"
                out[item.id] = Evidence(ok=tick is not None, detail=detail)
                continue
            check = check_registry()[item.check or ""]
            ctx = self.core.context_for(f"{gate_id}:{item.id}", StepState())
            try:
                result = check.evaluate(ctx, item.bound)
                evidence = Evidence(ok=result.ok, detail=result.detail, data=result.data)
            except Exception as exc:  # a check that cannot run is a failing check
                evidence = Evidence(ok=False, detail=f"check error: {exc}")
            measured[item.id] = out[item.id] = evidence.model_copy(
                update={"at": self.core.clock_now()}
            )
        if measured:
            with self.core.io_lock:
                state.evidence = {**state.evidence, **measured}
                self.core.save()
        return out

    def _gate(self, gate_id: str) -> Gate:
        try:
            return self.core.runbook.gate(gate_id)
        except StopIteration:
            raise BadRequest(f"no gate {gate_id!r} in this runbook") from None

    def tick(
        self, gate_id: str, item_id: str, by: str, note: str = "", caller: Caller | None = None
    ) -> None:
        gate = self._gate(gate_id)
        item = next((i for i in gate.items if i.id == item_id), None)
        if item is None:
            raise BadRequest(f"gate {gate_id} has no item {item_id!r}")
        if item.kind != "manual":
            raise CommandRefused(f"{gate_id}/{item_id} is automatic; the engine evaluates it")
        who = self.core.identify(caller)
        if refusal := tick_refusal(gate, item, who):
            raise CommandRefused(refusal)  # robust: refused before anything is written
        with self.core.io_lock:
            tick = Tick(by=by, at=now(), note=note, identity=who)
            self.core.journal.gate(gate_id).ticks[item_id] = tick
            self.core.journal.add_audit(
                by, f"ticked {gate_id}/{item_id}" + (f": {note}" if note else ""), who
            )
            self.core.save()
        self.core.log(f"{by} ticked {gate_id}/{item_id} as {who.principal}", step_id=gate_id)

    def untick(self, gate_id: str, item_id: str, by: str, caller: Caller | None = None) -> None:
        gate = self._gate(gate_id)
        item = next((i for i in gate.items if i.id == item_id), None)
        who = self.core.identify(caller)
        if item is not None and (refusal := tick_refusal(gate, item, who)):
            raise CommandRefused(refusal.replace("ticked", "ticked or unticked", 1))
        with self.core.io_lock:
            if self.core.journal.gate(gate_id).ticks.pop(item_id, None) is None:
                return
            self.core.journal.add_audit(by, f"unticked {gate_id}/{item_id}", who)
            self.core.save()
        self.core.log(f"{by} unticked {gate_id}/{item_id} as {who.principal}", step_id=gate_id)

    def ack(self, step_id: str, by: str, note: str = "", caller: Caller | None = None) -> None:
        try:
            step = self.core.runbook.step(step_id)
        except StopIteration:
            raise BadRequest(f"no step {step_id!r} in this runbook") from None
        state = self.core.journal.step(step_id)
        if step.kind != "manual" and not awaits_acceptance(state):
            raise CommandRefused(
                f"{step_id} is not a manual step and has no findings to accept; "
                "`runbook run` executes it"
            )
        if (waiting := self.core.waiting()) != NodeRef.step(step_id):  # robust: no early ack
            raise CommandRefused(
                f"{step_id} can be acknowledged only while the run waits at it; "
                f"it waits at {waiting or 'nothing'}"
            )
        who = self.core.identify(caller)
        with self.core.io_lock:
            state.acked_by, state.acked_at, state.ack_note = by, now(), note or None
            state.acked_identity = who
            self.core.journal.add_audit(
                by, f"acknowledged {step_id}" + (f": {note}" if note else ""), who
            )
            self.core.save()
        self.core.log(f"{by} acknowledged {step_id} as {who.principal}", step_id=step_id)

    def decide(
        self,
        gate_id: str,
        go: bool,
        by: str,
        note: str = "",
        override: str | None = None,
        caller: Caller | None = None,
    ) -> dict[str, Evidence]:
        gate = self._gate(gate_id)
        waiting = self.core.waiting()
        if waiting != NodeRef.gate(gate_id):
            at = str(waiting) if waiting else "no gate"
            raise CommandRefused(
                f"only the gate the run waits at can be decided; the run waits at {at}"
            )
        if not go and not note.strip():
            raise BadRequest("a NO-GO needs a note saying why")
        who = self.core.identify(caller)
        evidence = self.evaluate(gate_id)
        state = self.core.journal.gate(gate_id)
        failing = [item for item, ev in evidence.items() if not ev.ok]
        if go and failing and not (override and override.strip()):
            self._refuse_go(
                gate_id,
                by,
                who,
                f"failing {', '.join(failing)}",
                "; ".join(f"{item}: {evidence[item].detail}" for item in failing)
                + ". Fix them, or decide with an override reason.",
            )
        if go and failing and (refusal := override_refusal(gate, failing, who)):
            self._refuse_go(gate_id, by, who, refusal, refusal)
        if go and (problem := approval_problem(gate, state, self.core.journal.run.driver)):
            # no override lifts it: approvals are who, not what was measured
            self._refuse_go(gate_id, by, who, problem, problem + " (no override lifts this)")
        state.decision = "GO" if go else "NO-GO"
        state.by, state.at, state.note, state.identity = by, now(), note, who
        state.override = override if go and failing else None
        what = f"decided {state.decision} at {gate_id}"
        if state.override:
            what += f" with override ({state.override}) of {', '.join(failing)}"
        self.core.journal.add_audit(by, what + (f": {note}" if note else ""), who)
        self.core.save()
        level = "warning" if state.override or not go else "info"
        self.core.log(f"{by} {what} (as {who.principal})", level, step_id=gate_id)
        return evidence

    def _refuse_go(self, gate_id: str, by: str, who: Identity, audit: str, told: str) -> None:
        """A GO refused: audited (who tried, verified), then one line to the caller."""
        self.core.journal.add_audit(by, f"GO refused at {gate_id}: {audit}", who)
        self.core.save()
        raise CommandRefused(f"GO refused at {gate_id}: {told}")
