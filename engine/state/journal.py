"""The run's journal: what was *applied*, persisted atomically as TOML.

Per-item detail never lives here (it goes to artifacts beside the journal), so the file stays
small whatever the table sizes.
"""

from __future__ import annotations

import copy
import hashlib
import os
import tempfile
import threading
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import tomli_w
from pydantic import BaseModel, Field, PrivateAttr, ValidationError, model_validator

from engine.state.errors import JournalError
from engine.state.files import DIR_MODE, read_regular
from engine.state.records import dump, parse

SCHEMA_VERSION = 1
AUDIT_LIMIT = 500

StepStatus = Literal["pending", "running", "done", "failed", "rolled_back"]
M = TypeVar("M", bound=BaseModel)


def utcnow() -> str:
    """Now as log lines and artifacts write it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> datetime:
    """Now as the journal keeps it: a UTC datetime to the second (written "…Z")."""
    return datetime.now(UTC).replace(microsecond=0)


class TableProgress(BaseModel):
    done: int = 0
    total: int | None = None


class StepState(BaseModel):
    status: StepStatus = "pending"
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    checkpoint_at: datetime | None = None
    summary: dict[str, Any] = {}
    progress: dict[str, TableProgress] = {}
    # Action-specific resume state: cursors, ARNs, versions. Must stay small. Kept as a TOML
    # table; the action declares its model (engine/state/records.py), works on `cursors_as(model)`.
    cursors: dict[str, Any] = {}
    error: str | None = None
    acked_by: str | None = None
    acked_at: datetime | None = None
    ack_note: str | None = None
    # failed with findings a human must accept (`ack`) before the run goes on
    needs_acceptance: bool = False

    # the typed cursors in use, and a copy of the table as they last read or wrote it: a table
    # changed since (a hand edit, a test) is read again rather than overwritten
    _live: BaseModel | None = PrivateAttr(default=None)
    _live_seen: dict[str, Any] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _acceptance_was_a_cursor(self) -> StepState:
        """Journals of earlier versions kept the marker among the action's cursors."""
        if self.cursors.pop("needs_acceptance", None):
            self.needs_acceptance = True
        return self

    def cursors_as(self, model: type[M], where: str = "cursors") -> M:
        """The cursors as `model`, validated once; later calls return the same object, whose
        changes every journal save writes back (`sync_cursors`). A bad shape: JournalError."""

        live, data = self._current(model)
        if live is not None:
            return live
        typed = parse(model, data, where)
        self._live, self._live_seen = typed, copy.deepcopy(self.cursors)
        return typed

    def read_cursors(self, model: type[M], where: str = "cursors") -> M:
        """Another module's read of the facts in `model` (a view: keys it does not name are
        left alone, and nothing is bound, so the owner's full state is never cut down)."""

        live, data = self._current(model)
        if live is not None:
            return live
        return parse(model, {k: v for k, v in data.items() if k in model.model_fields}, where)

    def _current(self, model: type[M]) -> tuple[M | None, dict[str, Any]]:
        """The bound object when it is already a `model`, else the cursors as data (the bound
        object's, unless the table was replaced or edited since it was bound)."""

        live = self._live
        if live is not None and self._owns_table():
            if isinstance(live, model):
                return live, {}
            return None, dump(live)
        return None, self.cursors

    def cursors_table(self) -> dict[str, Any]:
        """The cursors as the journal keeps them (tests, hand edits): the typed object is
        written back and let go, so a change made to this table is what the next read sees."""
        self.sync_cursors()
        self._live = self._live_seen = None
        return self.cursors

    def sync_cursors(self) -> None:
        """Write the typed cursors in use back into the TOML table (before every save)."""

        if self._live is not None and self._owns_table():
            self.cursors = dump(self._live)
            self._live_seen = copy.deepcopy(self.cursors)
        elif self._live is not None:
            self._live = self._live_seen = None  # the table was changed by hand: it wins

    def _owns_table(self) -> bool:
        return self.cursors == self._live_seen


class Tick(BaseModel):
    by: str
    at: datetime
    note: str = ""


class Evidence(BaseModel):
    ok: bool
    detail: str = ""
    data: dict[str, Any] = {}
    at: datetime | None = None  # when it was taken


class GateState(BaseModel):
    decision: Literal["GO", "NO-GO"] | None = None
    by: str | None = None
    at: datetime | None = None
    note: str = ""
    override: str | None = None
    ticks: dict[str, Tick] = {}
    evidence: dict[str, Evidence] = {}


class RollbackRecord(BaseModel):
    id: str
    phase: str
    status: Literal["running", "done", "failed"] = "running"
    by: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    step_index: int = 0  # next rollback step to run, for resume
    summary: dict[str, Any] = {}
    error: str | None = None


class AuditEntry(BaseModel):
    at: datetime
    who: str
    what: str


class Target(BaseModel):
    kind: Literal["embedded", "endpoint", "aws"]
    identity: str  # embedded world id, endpoint URL, or account id
    region: str
    endpoint_url: str | None = None
    profile: str | None = None


class ScaleChange(BaseModel):
    """A rehearsal's clock changed (console +/- or --time-scale): plan time is counted per
    stretch, so a soak measured across the change stays right."""

    at: datetime  # journals before this version wrote "…Z" text: it loads the same
    from_scale: float
    to_scale: float
    by: str


class RunMeta(BaseModel):
    runbook_id: str
    runbook_sha256: str
    operator: str
    target: Target
    started_at: datetime
    migration_ts: str  # fixed timestamp the transforms use, so re-runs write identical items
    time_scale: float = 1.0  # a rehearsal's clock: later commands (decide, status) keep it
    scale_changes: list[ScaleChange] = []

    def change_scale(self, scale: float, by: str) -> None:
        self.scale_changes.append(
            ScaleChange(at=now(), from_scale=self.time_scale, to_scale=scale, by=by)
        )
        self.time_scale = scale

    def scale_steps(self) -> list[tuple[datetime, float, float]]:
        return [(c.at, c.from_scale, c.to_scale) for c in self.scale_changes]

    accepted_runbook_changes: list[str] = []

    @property
    def migration_date(self) -> str:
        return self.migration_ts[:10]


class Journal(BaseModel):
    schema_version: int = SCHEMA_VERSION
    run: RunMeta
    steps: dict[str, StepState] = {}
    gates: dict[str, GateState] = {}
    rollbacks: list[RollbackRecord] = []
    # Resume state of each rollback step, keyed "<rollback id>#<index>".
    rollback_steps: dict[str, StepState] = {}
    alerts: list[dict[str, Any]] = []
    # The user->company mapping in effect, journaled at first use (engine/state/mapping_record.py).
    mapping: dict[str, Any] = {}
    # The runbook's REST API by identity, resolved once (Day 1) by name and stage or pinned
    # (engine/actions/api_identity.py); every later step and rollback uses this id.
    api_id: str | None = None
    # when this run last created a deployment of that API: API Gateway allows one
    # CreateDeployment per 5 s per account, so the next one waits out the rest
    api_deployed_at: str | None = None
    audit: list[AuditEntry] = Field(default_factory=list)

    def step(self, step_id: str) -> StepState:
        return self.steps.setdefault(step_id, StepState())

    def gate(self, gate_id: str) -> GateState:
        return self.gates.setdefault(gate_id, GateState())

    def sync_cursors(self) -> None:
        """Every step's typed cursors written back into the journal's tables."""
        for state in (*self.steps.values(), *self.rollback_steps.values()):
            state.sync_cursors()

    def add_audit(self, who: str, what: str) -> None:
        self.audit.append(AuditEntry(at=now(), who=who, what=what))
        del self.audit[:-AUDIT_LIMIT]


def strip_none(value: Any) -> Any:
    """TOML has no null: drop None values recursively."""
    if isinstance(value, dict):
        return {k: strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_none(v) for v in value if v is not None]
    return value


def atomic_write(path: Path, data: bytes, mode: int = 0o600, sync: bool = True) -> None:
    """Temp file in the same directory, fsync, rename, fsync the directory (`sync` False: no
    fsync, for a copy whose truth is elsewhere: a reader still sees old or new, never half)."""
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if not sync:
        return
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


TRAILER = b"# end of journal, sha256 of the lines above: %s\n"


class JournalStore:
    """Reads and writes one journal file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # set by the driving workspace: False when the lock file was deleted or replaced
        self.lock_held: Callable[[], bool] | None = None
        # told when a checkpoint cannot be made durable yet and is retried (an S3 journal)
        self.on_hold: Callable[[str], None] | None = None

    def bind_stop(self, stop: threading.Event) -> None:
        """The engine's stop: a store that retries a checkpoint gives up when it is set."""

    @property
    def artifacts_dir(self) -> Path:
        return self.path.with_name(self.path.stem + ".artifacts")

    @property
    def log_path(self) -> Path:
        return self.path.with_name(self.path.stem + ".log")

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> Journal:
        try:
            raw = read_regular(self.path)
        except OSError as exc:
            raise JournalError(f"cannot read journal {self.path}: {exc}") from exc
        return parse_journal(raw, str(self.path))

    def check_lock(self) -> None:
        if self.lock_held is not None and not self.lock_held():
            raise JournalError(
                f"the lock file beside {self.path} was removed or replaced while this process "
                "held it; stopping so that two drivers never write one journal"
            )

    def save(self, journal: Journal) -> None:
        self.check_lock()
        atomic_write(self.path, render_journal(journal))


def render_journal(journal: Journal) -> bytes:
    """The journal as its file holds it: TOML, then the closing checksum line."""
    journal.sync_cursors()
    data = strip_none(journal.model_dump(mode="json"))
    body = tomli_w.dumps(data).encode("utf-8")
    return body + TRAILER % hashlib.sha256(body).hexdigest().encode()


def parse_journal(raw: bytes, where: str) -> Journal:
    """A journal file's bytes as a Journal; anything else is one JournalError naming `where`."""
    body, _, trailer = raw.rstrip(b"\n").rpartition(b"\n")
    expected = TRAILER % hashlib.sha256(body + b"\n").hexdigest().encode()
    if trailer + b"\n" != expected:
        # a cut at a line boundary still parses: only the trailer proves the file is whole
        raise JournalError(
            f"journal {where} is truncated or was edited (its closing checksum line is "
            "missing or does not match); it was left untouched. Inspect it, restore it, or "
            "pass --journal to start a new run elsewhere."
        )
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise JournalError(
            f"journal {where} is corrupt or truncated ({reason}); it was left untouched. "
            "Inspect it, restore it, or pass --journal to start a new run elsewhere."
        ) from exc
    try:
        journal = Journal.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(part) for part in first["loc"]) or "(top)"
        raise JournalError(
            f"journal {where} does not match the journal schema ({loc}: {first['msg']}; "
            f"{exc.error_count()} problem(s)); it was left untouched"
        ) from exc
    if journal.schema_version != SCHEMA_VERSION:
        raise JournalError(
            f"journal {where} has schema version {journal.schema_version}, "
            f"this runbook-console writes version {SCHEMA_VERSION}"
        )
    return journal
