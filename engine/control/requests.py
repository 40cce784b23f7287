"""The control commands of a detached engine, each declared once: a request model per command
(its name, its fields, what it answers, the call it makes), dispatched from one table, as
gh-ost's `server.go` does. The server validates a line into one of these and calls `apply`;
the client (`RemoteEngine`) sends one and reads the answer as its `answer` type.

A new control command: a class here, listed in REQUESTS, and its CLI command.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Protocol

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from engine.core.commands import (
    Caller,
    ControlCommands,
    ControlState,
    EngineCommands,
    GateEvidence,
    RollbackPreview,
)
from engine.core.outcome import BadRequest, Outcome
from engine.core.views import Frozen, RunSnapshot

ANSWER_TIMEOUT = 30.0  # a decide evaluates the gate's checks against the target: allow for it


class Served(EngineCommands, ControlCommands, Protocol):
    """What the server's engine offers (engine/control/job_loop.py `DetachedRun`)."""

    def ping(self) -> int: ...


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a number is needed")
    return value


def _nonblank(value: Any) -> Any:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a non-empty text is needed")
    return value


Text = Annotated[str, BeforeValidator(_nonblank)]
Number = Annotated[float, Field(allow_inf_nan=False), BeforeValidator(_no_bool)]
Limit = Annotated[float, Field(gt=0, allow_inf_nan=False), BeforeValidator(_no_bool)]
Count = Annotated[int, Field(gt=0), BeforeValidator(_no_bool)]
Share = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False), BeforeValidator(_no_bool)]


class StatusAnswer(Frozen):
    control: ControlState
    snapshot: RunSnapshot  # as `status --json` prints it


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cmd: str
    answer: ClassVar[TypeAdapter[Any]] = TypeAdapter(str)  # what the engine answers
    timeout: ClassVar[float | None] = ANSWER_TIMEOUT  # seconds the client waits for it

    def apply(self, engine: Served) -> Any:
        raise NotImplementedError

    def wire(self) -> dict[str, Any]:
        """The request as sent: its name and the fields given (an absent one changes nothing)."""
        return {"cmd": self.cmd, **self.model_dump(mode="json", exclude_unset=True)}

    def from_peer(self, uid: int) -> Request:
        """The request with the caller's uid as the kernel gave it (SO_PEERCRED): whatever
        the line said about it is replaced."""
        if "caller" not in type(self).model_fields:
            return self
        caller = getattr(self, "caller", None) or Caller()
        return self.model_copy(update={"caller": caller.model_copy(update={"peer_uid": uid})})


class Acting(Request):
    """A command that acts on the run: who sent it is verified and journaled."""

    caller: Caller | None = None


class Ping(Request):
    cmd: Literal["ping"] = "ping"
    answer = TypeAdapter(int)

    def apply(self, engine: Served) -> int:
        return engine.ping()


class Status(Request):
    cmd: Literal["status"] = "status"
    answer = TypeAdapter(StatusAnswer)

    def apply(self, engine: Served) -> StatusAnswer:
        return StatusAnswer(control=engine.control_state(), snapshot=engine.snapshot())


class Subscribe(Request):
    """Turns the connection into the watcher stream (engine/control/server.py)."""

    cmd: Literal["subscribe"] = "subscribe"

    def apply(self, engine: Served) -> str:
        return "watching"


class Pause(Acting):
    cmd: Literal["pause"] = "pause"
    by: Text

    def apply(self, engine: Served) -> str:
        return engine.pause(self.by, self.caller)


class Resume(Acting):
    cmd: Literal["resume"] = "resume"
    by: Text
    consent: bool = False
    approve: Text | None = None

    def apply(self, engine: Served) -> str:
        return engine.resume(self.by, self.consent, self.approve, self.caller)


class Stop(Acting):
    cmd: Literal["stop"] = "stop"
    by: Text

    def apply(self, engine: Served) -> str:
        return engine.stop(self.by, self.caller)


class Throttle(Acting):
    """Only the settings given change; None: no limit / the runbook's value."""

    cmd: Literal["throttle"] = "throttle"
    by: Text
    rate: Limit | None = None
    in_flight: Count | None = None
    segments: Count | None = None
    capacity_share: Share | None = None  # of the tables' capacity (issue 21); None: off

    @model_validator(mode="after")
    def _some(self) -> Throttle:
        if not self.changes():
            raise ValueError("give --rate, --in-flight, --segments and/or --capacity-share")
        return self

    def changes(self) -> dict[str, float | int | None]:
        names = ("rate", "in_flight", "segments", "capacity_share")
        return {name: getattr(self, name) for name in names if name in self.model_fields_set}

    def apply(self, engine: Served) -> str:
        return engine.throttle(self.by, self.caller, **self.changes())


class Tick(Acting):
    cmd: Literal["tick"] = "tick"
    gate: Text
    item: Text
    by: Text
    note: str = ""
    answer = TypeAdapter(None)

    def apply(self, engine: Served) -> None:
        engine.tick(self.gate, self.item, self.by, self.note, self.caller)


class Untick(Acting):
    cmd: Literal["untick"] = "untick"
    gate: Text
    item: Text
    by: Text
    answer = TypeAdapter(None)

    def apply(self, engine: Served) -> None:
        engine.untick(self.gate, self.item, self.by, self.caller)


class Evaluate(Request):
    """The console's gate screen: evidence now (recorded, so the next snapshot has it too)."""

    cmd: Literal["evaluate"] = "evaluate"
    gate: Text
    answer = TypeAdapter(GateEvidence)

    def apply(self, engine: Served) -> GateEvidence:
        return engine.evaluate_gate(self.gate)


class Clock(Request):
    cmd: Literal["clock"] = "clock"
    scale: Number
    by: Text
    answer = TypeAdapter(None)

    def apply(self, engine: Served) -> None:
        engine.set_time_scale(self.scale, self.by)  # a running wait follows at its next tick


class Ack(Acting):
    cmd: Literal["ack"] = "ack"
    step: Text
    by: Text
    note: str = ""
    answer = TypeAdapter(None)

    def apply(self, engine: Served) -> None:
        engine.ack(self.step, self.by, self.note, self.caller)


class Decide(Acting):
    cmd: Literal["decide"] = "decide"
    gate: Text
    go: bool
    by: Text
    note: str = ""
    override: Text | None = None
    answer = TypeAdapter(GateEvidence)

    def apply(self, engine: Served) -> GateEvidence:
        return engine.decide(self.gate, self.go, self.by, self.note, self.override, self.caller)


class PreviewRollback(Request):
    cmd: Literal["preview_rollback"] = "preview_rollback"
    phase: Text
    answer = TypeAdapter(RollbackPreview)

    def apply(self, engine: Served) -> RollbackPreview:
        return engine.preview_rollback(self.phase)


class Rollback(Acting):
    """Answers when the rollback is done: the client waits without a timeout."""

    cmd: Literal["rollback"] = "rollback"
    phase: Text
    by: Text
    answer = TypeAdapter(Outcome)
    timeout = None

    def apply(self, engine: Served) -> Outcome:
        return engine.rollback(self.phase, self.by, self.caller)


# The table: a command's name -> its request model.
REQUESTS: dict[str, type[Request]] = {
    model.model_fields["cmd"].default: model
    for model in (
        Ping,
        Status,
        Subscribe,
        Pause,
        Resume,
        Stop,
        Throttle,
        Tick,
        Untick,
        Evaluate,
        Clock,
        Ack,
        Decide,
        PreviewRollback,
        Rollback,
    )
}


def parse_request(obj: dict[str, Any]) -> Request:
    """A decoded line as its request model; BadRequest names what is wrong."""
    cmd = obj.get("cmd")
    model = REQUESTS.get(cmd) if isinstance(cmd, str) else None
    if model is None:
        raise BadRequest(f"unknown command {cmd!r}; known: {', '.join(REQUESTS)}")
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise BadRequest(f"{cmd}: {describe(exc)}") from None


def describe(exc: ValidationError) -> str:
    """A validation error in one line: each field and what is wrong with it."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        cause = error.get("ctx", {}).get("error") if error["type"] == "value_error" else None
        message = str(cause) if cause is not None else error["msg"]
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)
