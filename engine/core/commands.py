"""The one typed boundary between the engine and its front ends (the CLI, the console).

`EngineCommands` is what the local `Engine` (engine/run/engine.py) and the client of a detached
engine (`RemoteEngine`, engine/control/client.py) both offer; `ControlCommands` is what a
detached engine adds (pause, resume, stop, throttle, its own state). Both sides return the same
models: `RollbackPreview`, gate evidence (`Evidence` per item), `ControlState`, `Outcome`.
A command the engine will not carry out raises `CommandRefused`, `BadRequest` or `NotAllowed`
(engine/core/outcome.py); over the socket it travels as a `Refusal` and is raised again as the
same class on the other side. No message is parsed for what it means.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from engine.core.outcome import BadRequest, CommandRefused, NotAllowed, Outcome
from engine.core.views import Frozen, RunSnapshot
from engine.state.journal import Evidence

GateEvidence = dict[str, Evidence]  # item id -> what was measured (or ticked) for it


class StsProof(Frozen):
    """A signed sts:GetCallerIdentity request (URL and headers; the body is fixed): the
    caller's AWS identity for a detached engine to verify (engine/aws/caller_identity.py).
    Valid minutes, for that one call; never journaled, logged or shown."""

    url: str
    headers: dict[str, str]

    def __repr__(self) -> str:  # robust: a signature never lands in a traceback or a log
        return "StsProof(<signed>)"

    __str__ = __repr__


class Caller(Frozen):
    """Who acts, beyond `--by` (a display name): what a front end offers the engine to verify.
    The engine fills in what only it can know (its own uid, or the socket peer's)."""

    rehearsal_as: str | None = None  # `--as NAME`: rehearsal only, never verified
    proof: StsProof | None = None  # a detached engine's caller: its STS identity, signed
    peer_uid: int | None = None  # set by the control server from SO_PEERCRED, never the wire


class RollbackStepPreview(Frozen):
    """One step of a rollback, with the calls it makes (`runbook plan`'s lines)."""

    title: str
    calls: tuple[str, ...]


class RollbackPreview(Frozen):
    phase: str
    steps: tuple[RollbackStepPreview, ...]

    def lines(self) -> list[str]:
        """The preview as `runbook rollback --preview` prints it."""
        out: list[str] = []
        for step in self.steps:
            out.append(f"{step.title}:")
            out += [f"    {call}" for call in step.calls]
        return out


class ThrottleView(Frozen):
    """The operator's throttle of a detached engine; None: no limit / the runbook's value."""

    rate: float | None = None
    in_flight: int | None = None
    segments: int | None = None
    in_flight_applied: bool = False
    capacity_share: float | None = None  # the operator's share of the tables' capacity
    text: str = ""


class LastOutcome(Frozen):
    status: str
    message: str = ""


Activity = Literal["idle", "running", "rolling back", "stopping", "starting"]


class ControlState(Frozen):
    """A detached engine's own state: what it is doing, paused or not, its throttle."""

    pid: int
    socket: str = ""
    activity: Activity
    pause: Literal["paused", "pausing"] | None = None
    consent: bool = False
    approved: str | None = None
    throttle: ThrottleView = ThrottleView()
    last: LastOutcome | None = None

    @property
    def working(self) -> bool:
        return self.activity != "idle"


class Refusal(Frozen):
    """A command not carried out, as a value: its kind says which error it is."""

    kind: Literal["refused", "bad_request", "not_allowed"]
    message: str

    @classmethod
    def of(cls, exc: CommandRefused | BadRequest | NotAllowed) -> Refusal:
        return cls(kind=_KINDS[type(exc)], message=str(exc))

    def error(self) -> CommandRefused | BadRequest | NotAllowed:
        return {kind: error for error, kind in _KINDS.items()}[self.kind](self.message)


_KINDS: dict[type[Exception], Literal["refused", "bad_request", "not_allowed"]] = {
    CommandRefused: "refused",
    BadRequest: "bad_request",
    NotAllowed: "not_allowed",
}


@runtime_checkable
class EngineCommands(Protocol):
    """What every engine offers its front ends. `by` is who acts as they name themselves;
    `caller` what the engine verifies beside it (engine/run/identity.py); both journaled."""

    def snapshot(self) -> RunSnapshot:
        """The run as it stands, immutable."""
        ...

    def tick(
        self, gate_id: str, item_id: str, by: str, note: str = "", caller: Caller | None = None
    ) -> None:
        """Tick a manual item of a gate. BadRequest: no such gate or item; CommandRefused: the
        verified identity is not one of the item's `approvers` (nothing changed)."""
        ...

    def untick(self, gate_id: str, item_id: str, by: str, caller: Caller | None = None) -> None: ...

    def evaluate_gate(self, gate_id: str) -> GateEvidence:
        """Measure the gate's automatic items now; recorded (the next snapshot has them)."""
        ...

    def decide(
        self,
        gate_id: str,
        go: bool,
        by: str,
        note: str = "",
        override: str | None = None,
        caller: Caller | None = None,
    ) -> GateEvidence:
        """GO or NO-GO at the gate the run waits at. CommandRefused: not that gate, a GO
        with failing items and no override reason, or approvals short of the gate's rules
        (no override lifts those); BadRequest: a NO-GO without a note."""
        ...

    def ack(self, step_id: str, by: str, note: str = "", caller: Caller | None = None) -> None:
        """Acknowledge a manual step (or a step's findings)."""
        ...

    def preview_rollback(self, phase_id: str) -> RollbackPreview:
        """The calls a rollback of the phase would make; changes nothing."""
        ...

    def set_time_scale(self, scale: float, by: str) -> None:
        """A rehearsal's clock. CommandRefused on a real account."""
        ...


@runtime_checkable
class ControlCommands(Protocol):
    """What a detached engine adds: commands on the run while it goes on."""

    def control_state(self) -> ControlState: ...

    def pause(self, by: str, caller: Caller | None = None) -> str:
        """Hold the run at its next batch boundary (a checkpoint); what happened, in words."""
        ...

    def resume(
        self,
        by: str,
        consent: bool = False,
        approve: str | None = None,
        caller: Caller | None = None,
    ) -> str:
        """Go on. `consent`: every destructive step from now on; `approve`: that one step."""
        ...

    def stop(self, by: str, caller: Caller | None = None) -> str:
        """Checkpoint, then the engine exits."""
        ...

    def throttle(self, by: str, caller: Caller | None = None, **changes: float | int | None) -> str:
        """`rate` (items/s), `in_flight`, `segments`, `capacity_share`; None: no limit / the
        runbook's value."""
        ...

    def rollback(self, phase_id: str, by: str, caller: Caller | None = None) -> Outcome:
        """Run the phase's rollback (the caller asked for consent already)."""
        ...
