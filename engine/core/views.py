"""The typed, immutable views of a run (`RunSnapshot` and its parts): what the console,
`status` and `status --json` show. Models only; engine/run/snapshot.py builds them from a journal.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class NodeRef(Frozen):
    """A step or a gate of the runbook's sequence."""

    kind: Literal["gate", "step"]
    id: str

    @classmethod
    def gate(cls, gate_id: str) -> NodeRef:
        return cls(kind="gate", id=gate_id)

    @classmethod
    def step(cls, step_id: str) -> NodeRef:
        return cls(kind="step", id=step_id)

    @classmethod
    def of(cls, node: tuple[str, str]) -> NodeRef:
        return cls(kind=node[0], id=node[1])  # type: ignore[arg-type]

    def as_tuple(self) -> tuple[str, str]:
        return (self.kind, self.id)

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"


class RunState(StrEnum):
    READY = "READY"  # nothing runs; `run` goes on
    RUNNING = "RUNNING"  # an engine (here or in another process) runs a step
    WAITING_GATE = "WAITING_GATE"  # a go/no-go decision is needed
    WAITING_ACK = "WAITING_ACK"  # a manual step (or findings) must be acknowledged
    INTERRUPTED = "INTERRUPTED"  # a step stopped at a checkpoint; `run` resumes it
    FAILED = "FAILED"  # a step or a rollback failed; `run` retries, or roll back
    DONE = "DONE"  # every step is done


DisplayStatus = Literal[
    "pending", "running", "done", "failed", "rolled_back", "waiting", "interrupted"
]


class TableView(Frozen):
    table: str
    done: int
    total: int | None
    rate: float | None = None  # items per second; None: not measured (yet)
    eta_seconds: float | None = None
    capacity: str | None = None  # consumed units/s against the budget, while it runs


class StepView(Frozen):
    id: str
    phase: str
    kind: str
    action: str | None
    title: str
    slot: str
    slot_start: str
    destructive: bool
    instructions: str
    status: DisplayStatus  # what to show: a journal "running" step is interrupted when idle
    journal_status: str
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    checkpoint_at: datetime | None
    progress: tuple[TableView, ...]
    summary: dict[str, Any]
    error: str | None
    acked_by: str | None
    acked_at: datetime | None
    ack_note: str | None
    needs_acceptance: bool
    acked_identity: str | None = None  # verified, beside acked_by (Identity.text())


class ItemView(Frozen):
    id: str
    kind: Literal["auto", "manual"]
    text: str
    ok: bool | None  # None: an automatic item not evaluated (since the last reset)
    detail: str
    data: dict[str, Any] = {}
    at: datetime | None = None  # when the evidence was taken, or the tick made
    by: str | None = None  # who ticked (the name they gave)
    principal: str | None = None  # who ticked, verified: a role ARN or os:NAME
    identity: str | None = None  # the verified identity in words (Identity.text())
    approvers: tuple[str, ...] = ()  # who may tick it (runbook patterns); empty: anyone


class GateView(Frozen):
    id: str
    title: str
    decision: Literal["GO", "NO-GO"] | None
    by: str | None
    at: datetime | None
    note: str
    override: str | None
    items: tuple[ItemView, ...]
    identity: str | None = None  # who decided, verified (Identity.text())
    min_approvals: int = 0
    approver_not_operator: bool = False
    approved_by: tuple[str, ...] = ()  # the distinct verified principals among the ticks
    approval_problem: str | None = None  # why approvals do not allow a GO yet (no override)

    @property
    def met(self) -> int:
        return sum(1 for i in self.items if i.ok)

    @property
    def failing(self) -> tuple[ItemView, ...]:
        return tuple(i for i in self.items if not i.ok)


class AlertView(Frozen):
    trigger: str
    step: str | None
    phase: str | None
    at: datetime | None
    message: str
    measured: float
    threshold: float
    rollback: str | None
    auto_rollback: bool = False  # the engine ran `rollback` itself when the trigger fired


class RollbackView(Frozen):
    id: str
    phase: str
    status: str
    by: str
    started_at: datetime | None
    finished_at: datetime | None
    step_index: int
    error: str | None
    identity: str | None = None  # who started it, verified


class NotificationsView(Frozen):
    """Deliveries of the run's notifications (`[notify]`): counts and what fails now."""

    configured: bool = False
    sent: int = 0
    failed: int = 0
    failing: tuple[str, ...] = ()  # "kind at target: error" of failed deliveries, latest last

    @property
    def status_line(self) -> str | None:
        return "notifications failing" if self.failing else None


class RunInfo(Frozen):
    runbook_id: str
    runbook_title: str
    runbook_sha256: str
    operator: str
    started_at: datetime | None
    migration_ts: str
    time_scale: float
    target: dict[str, Any]
    journal: str
    driver: str | None = None  # the verified identity driving the run (Identity.text())


class RunSnapshot(Frozen):
    """Everything a view shows. Serialise with `model_dump_json()`; nothing in it is shared
    with the engine's live state."""

    taken_at: datetime
    run: RunInfo | None  # None before any run (no journal yet)
    state: RunState
    driver: str | None = None  # who drives, when another process does
    current: NodeRef | None  # what runs, or waits, or comes next
    waiting: NodeRef | None  # the human decision the run waits for
    next_node: NodeRef | None
    next_gate: str | None
    next_destructive: str | None
    proposed_rollback: str | None
    running_rollback: str | None
    archive_gaps: tuple[str, ...] = ()  # deleted resources whose archive is incomplete
    checkpoint_held: str | None = None  # a checkpoint waits to be durable (S3), and why
    steps: tuple[StepView, ...]
    gates: tuple[GateView, ...]
    alerts: tuple[AlertView, ...]
    rollbacks: tuple[RollbackView, ...]
    notifications: NotificationsView = NotificationsView()

    def step(self, step_id: str) -> StepView:
        return next(s for s in self.steps if s.id == step_id)

    def gate(self, gate_id: str) -> GateView:
        return next(g for g in self.gates if g.id == gate_id)

    @property
    def steps_done(self) -> int:
        return sum(1 for s in self.steps if s.status == "done")

    @property
    def interrupted(self) -> str | None:
        return next((s.id for s in self.steps if s.status == "interrupted"), None)

    @property
    def failed(self) -> str | None:
        return next((s.id for s in self.steps if s.status == "failed"), None)
