"""What an action sees: its parameters, AWS clients, its journal slot, events and artifacts."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from engine.core.clock import Clock
from engine.core.events import Event, Level, LogLine, Progress
from engine.core.throttle import WriteThrottle
from engine.core.world import REAL_ACCOUNT, World
from engine.runbook.model import Runbook
from engine.state.files import inside, no_symlink, private_dir
from engine.state.journal import Journal, StepState, TableProgress, utcnow
from engine.state.journal import now as journal_now
from engine.state.records import Cursors, NoCursors, Summary, dump

CHECKPOINT_EVERY_SECONDS = 1.0
C = TypeVar("C", bound=Cursors)


class NeedsAcceptance(Exception):
    """An action found problems a human must accept before the run goes on (e.g. a final
    validation before deletions). The step fails, and the run waits at it like a manual step:
    `runbook run` tries it again, `runbook ack` accepts what it found."""

    def __init__(self, message: str, summary: Summary | dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = dump(summary) if isinstance(summary, BaseModel) else summary


class RollBackNow(Exception):
    """A rollback trigger with `auto_rollback` fired: the step fails and the engine runs
    `rollback_phase`'s (non-destructive) rollback at once, recorded as done by `by`."""

    def __init__(self, message: str, rollback_phase: str, by: str) -> None:
        super().__init__(message)
        self.rollback_phase = rollback_phase
        self.by = by


class RateMeter:
    """Items per second over a sliding window, and the ETA that follows."""

    # a rate over less than this says nothing: a resumed step's first pages land within
    # milliseconds of each other (20,510/s was shown), so wait until the span means something
    MIN_SPAN_SECONDS = 1.0

    def __init__(self, window_seconds: float = 10.0) -> None:
        self.window = window_seconds
        self.samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, done: int) -> float | None:
        """Items per second; None until the samples span MIN_SPAN_SECONDS (starting)."""
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[0][0] > self.window:
            self.samples.popleft()
        t0, d0 = self.samples[0]
        if now - t0 < self.MIN_SPAN_SECONDS:
            return None
        return (done - d0) / (now - t0)


def eta_seconds(done: int, total: int | None, rate: float | None) -> float | None:
    if total is None or rate is None or rate <= 0:
        return None
    return max(0, total - done) / rate


@dataclass
class ActionContext:
    step_id: str
    runbook: Runbook
    journal: Journal
    state: StepState  # this step's (or rollback's) slot in the journal
    clients: Callable[[str], Any]  # service name -> boto3 client
    clock: Clock
    artifacts_dir: Path
    emit: Callable[[Event], None]
    save: Callable[[], None]  # persists the journal atomically
    world: World = REAL_ACCOUNT  # what a rehearsal simulates or stands in with
    operator: str = ""
    mapping_overrides: Path | None = None  # --mapping-overrides, else beside the journal
    throttle: WriteThrottle = field(default_factory=WriteThrottle)  # writes in flight
    _last_checkpoint: float = 0.0
    _meters: dict[str, RateMeter] = field(default_factory=dict)

    @property
    def migration_ts(self) -> str:
        return self.journal.run.migration_ts

    @property
    def migration_date(self) -> str:
        return self.journal.run.migration_date

    def cursors_as(self, model: type[C]) -> C:
        """This step's resume state as its declared model (validated on entry; every
        checkpoint writes it back). The same object for the whole run of the step."""
        rollback = "#" in self.step_id  # "<rollback id>#<index>"
        slot = f'rollback_steps."{self.step_id}"' if rollback else f"steps.{self.step_id}"
        return self.state.cursors_as(model, f"{slot}.cursors")

    @property
    def cursors(self) -> dict[str, Any]:
        """The resume state as the journal keeps it (for tests and inspection; actions use
        `cursors_as`)."""
        return self.state.cursors_table()

    def client(self, service: str) -> Any:
        return self.clients(service)

    def log(self, message: str, level: Level = "info") -> None:
        self.emit(LogLine(self.step_id, level, message, utcnow()))

    def progress(
        self,
        table: str,
        done: int,
        total: int | None,
        in_flight: tuple[int, int] | None = None,
        capacity: str | None = None,
    ) -> None:
        """Record and announce progress; the journal keeps only done/total. `in_flight` is
        (writes in flight now, the limit) for steps that keep several writes going;
        `capacity` their consumed units against the budget."""
        self.state.progress[table] = TableProgress(done=done, total=total)
        meter = self._meters.setdefault(table, RateMeter())
        rate = meter.add(self.clock.monotonic(), done)
        eta = eta_seconds(done, total, rate)
        self.emit(Progress(self.step_id, table, done, total, rate, eta, in_flight, capacity))

    def checkpoint(self, force: bool = False) -> None:
        """Persist applied state; throttled so a fast loop does not rewrite the file per batch."""
        now = time.monotonic()
        if force or now - self._last_checkpoint >= CHECKPOINT_EVERY_SECONDS:
            self.state.checkpoint_at = journal_now()
            self.state.sync_cursors()
            self.save()
            self._last_checkpoint = now

    def artifact(self, name: str) -> Path:
        """A file beside the journal for per-item detail (mappings, quarantine, archives)."""
        private_dir(self.artifacts_dir)  # robust: 0700, never a symlink, never outside it
        return no_symlink(inside(self.artifacts_dir, name))

    def overrides_path(self) -> Path:
        default = self.artifacts_dir.parent / (self.artifacts_dir.stem + ".mapping-overrides.toml")
        return self.mapping_overrides or default

    def gate_is_go(self, gate_id: str) -> bool:
        return self.journal.gate(gate_id).decision == "GO"


@dataclass(frozen=True)
class PlannedCall:
    """One call `runbook plan` shows: the API operation and the resource it touches."""

    service: str
    operation: str
    resource: str
    note: str = ""

    def render(self) -> str:
        extra = f"  ({self.note})" if self.note else ""
        return f"{self.service}.{self.operation}  {self.resource}{extra}"


@dataclass(frozen=True)
class Action:
    """A generic, reusable step implementation, registered by name.

    `run` returns the result summary (its `summary` model, or a dict of that shape) and must
    be idempotent: it reads its resume state from `ctx.cursors_as(cursors)` and checkpoints
    what it has applied.
    """

    name: str
    params: type[BaseModel]
    run: Callable[[ActionContext, Any], Summary | dict[str, Any]]
    plan: Callable[[Runbook, Any], list[PlannedCall]]
    description: str = ""
    # plan seconds the step keeps the run waiting (watch windows): sizes a rehearsal's clock
    waits: Callable[[Any], float] | None = None
    cursors: type[Cursors] = NoCursors  # the shape of its resume state
    summary: type[Summary] = Summary  # the shape of what it reports
    # why a summary it once reported done cannot be trusted (an older version marked it done
    # on a short scan, say): `run` reopens such a step. None: every done summary stands.
    unsound: Callable[[dict[str, Any]], str | None] | None = None
    # what `runbook check` refuses in its bound params given the runbook (one line each)
    check: Callable[[Runbook, Any], list[str]] | None = None

    def summary_dict(self, result: Summary | dict[str, Any], where: str) -> dict[str, Any]:
        """What `run` returned, checked against the declared summary, as the journal keeps it.
        A mismatch is the action's own fault: the step fails naming the field."""
        data = dump(result) if isinstance(result, BaseModel) else result
        try:
            return dump(self.summary.model_validate(data))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "(top)"
            raise ValueError(
                f"{self.name} returned a summary unlike {self.summary.__name__} "
                f"({where}.{field}: {first['msg']})"
            ) from None


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    """An automatic gate item: evaluated against the live target and the journal."""

    name: str
    params: type[BaseModel]
    evaluate: Callable[[ActionContext, Any], CheckResult]
    description: str = ""
    # plan seconds a gate waits for this item to pass (a soak): sizes a rehearsal's clock
    waits: Callable[[Any], float] | None = None
