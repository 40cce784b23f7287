"""Resolve runbook, target, journal and lock into a ready Engine (shared by the CLI and the TUI)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.aws.target import Connection, TargetError, TargetSpec, connect, identify
from engine.core.clock import MAX_TIME_SCALE
from engine.core.world import REAL_ACCOUNT, World
from engine.plan.loader import LoadedRunbook, default_runbook_path, load_runbook
from engine.rehearsal.clock import default_scale
from engine.rehearsal.embedded import (
    WorldGone,
    WorldRecord,
    reconnect,
    record_path_for,
    start_world,
    stop_world,
)
from engine.rehearsal.state_bucket import make_state_bucket
from engine.rehearsal.world import EMBEDDED, STAND_IN
from engine.run.core import EngineOptions
from engine.run.engine import Engine
from engine.session.journals import (
    archive_journal,
    check_journal,
    default_journal_path,
    new_journal,
    operator_name,
    state_dir,
)
from engine.session.remote_state import RemoteState, s3_location_of, state_connection
from engine.session.state_move import refuse_if_moved_from, refuse_if_moved_here
from engine.state.errors import JournalError
from engine.state.files import no_symlink
from engine.state.journal import Journal, JournalStore, Target
from engine.state.lock import Holder, JournalLock, is_locked
from engine.state.mapping_record import MappingChanged, read_override_file, refuse_if_changed
from engine.state.s3_lock import S3Lock, s3_holder


class NoRun(Exception):
    """There is no journal yet for this runbook and target."""


class BadInput(Exception):
    """An option names something that does not exist or cannot be used (exit 2)."""


@dataclass
class WorkspaceOptions:
    runbook: Path | None = None
    journal: Path | str | None = None  # a path, or s3://bucket/prefix/name.toml
    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None
    operator: str | None = None
    time_scale: float | None = None  # None: keep the run's recorded scale
    accept_runbook_change: bool = False
    mapping_overrides: Path | None = None
    fresh: bool = False
    read_timeout: float | None = None
    state_profile: str | None = None  # an S3 journal's credentials, when not the target's
    state_kms_key: str | None = None  # SSE-KMS for an S3 journal (default SSE-S3)
    take_over: bool = False  # an S3 journal's lock held by a machine that is gone


# the operations that may start a new run (and so, on the embedded world, start the world);
# the others (status, state moves) need the run's world as it is
STARTS_A_RUN = frozenset({"run", "run --detach", "console"})


def _no_clients(service: str) -> Any:
    raise TargetError("this view is read-only and has no connection to the target")


class Workspace:
    def __init__(self, options: WorkspaceOptions) -> None:
        self.options = options
        self.loaded: LoadedRunbook = load_runbook(options.runbook or default_runbook_path())
        self.spec = TargetSpec(
            options.endpoint_url, options.profile, options.region, options.read_timeout
        )
        if self.spec.kind == "aws" and options.time_scale not in (None, 1.0):
            raise TargetError(
                "--time-scale is for rehearsals; it is refused against a real account"
            )
        if options.mapping_overrides is not None and not options.mapping_overrides.is_file():
            raise BadInput(
                f"--mapping-overrides {options.mapping_overrides}: no such file (a missing "
                "overrides file is never read as 'no overrides')"
            )
        runbook_id = self.loaded.runbook.runbook.id
        self.remote: RemoteState | None = None
        self._started: tuple[Connection, WorldRecord] | None = None  # world started for state
        self.s3_lock: S3Lock | None = None
        self.operator = operator_name(options.operator)
        self.lock: JournalLock | None = None
        try:
            location = s3_location_of(options.journal)
        except ValueError as exc:
            raise BadInput(f"--journal {exc}") from None
        if location is None:
            local = options.journal if isinstance(options.journal, Path) else None
            self.journal_path = local or default_journal_path(runbook_id, self.spec.slug())
            self.store = JournalStore(self.journal_path)
            return
        # this machine's working copy; the run itself is in S3
        self.journal_path = location.cache_path(state_dir())
        client, clients = None, None
        if not self.is_embedded:  # the embedded world's client comes with the world
            conn = state_connection(self.spec, options.state_profile, self.region)
            client, clients = conn.client("s3"), conn.client
        self.remote = RemoteState.open(
            location, client, options.state_kms_key, self.journal_path, clients
        )
        self.store = self.remote.store

    @property
    def region(self) -> str:
        return self.spec.region or self.loaded.runbook.runbook.region

    @property
    def journal_arg(self) -> str:
        """--journal as another process of this run is given it (a path or the S3 URL)."""
        return self.remote.location.url if self.remote else str(self.journal_path)

    @property
    def is_embedded(self) -> bool:
        return self.spec.kind == "embedded"

    @property
    def world(self) -> World:
        """What actions may simulate or stand in with on this target (nothing on AWS)."""
        return {"embedded": EMBEDDED, "endpoint": STAND_IN}.get(self.spec.kind, REAL_ACCOUNT)

    def acquire(self, operation: str) -> None:
        """Take the one-driver lock; raises LockedError naming the holder."""
        no_symlink(self.store.log_path)  # checked before acting: a refusal must mean "nothing done"
        if self.remote is not None:
            self._acquire_remote(operation)
        else:
            refuse_if_moved_here(self.journal_path)  # pushed to S3: drive it there
        self.lock = JournalLock(self.journal_path, operation)
        try:
            self.lock.acquire()
        except BaseException:
            self.release()
            raise
        self.store.lock_held = self.lock.still_held

    def _acquire_remote(self, operation: str) -> None:
        """An S3 journal: its bucket checked, its lock taken, S3's log and artifacts here."""
        assert self.remote is not None
        if self.is_embedded:
            self._world_state(create=operation in STARTS_A_RUN)
        self.remote.check_bucket()
        self.s3_lock = self.remote.lock(operation, self.options.take_over)
        self.s3_lock.acquire()
        try:
            refuse_if_moved_from(self.remote)  # pulled to a folder: drive it there
            self.remote.store.pull()
        except BaseException:
            self.release()
            raise

    def holder(self) -> Holder | None:
        """Who drives this run now: the lock here, else (a run in S3) the lock object there."""
        return is_locked(self.journal_path) or self.remote_holder()

    def remote_holder(self) -> Holder | None:
        """Who holds the lock object of a run in S3 (None for a local run)."""
        if self.remote is None:
            return None
        return s3_holder(self.remote.objects, self.remote.location)

    def release(self) -> None:
        if self.lock:
            self.lock.release()
            self.lock = None
            self.store.lock_held = None
        if self.s3_lock:
            if self.remote is not None:
                self.remote.store.flush()
            self.s3_lock.release()
            self.s3_lock = None

    # ---- connecting -----------------------------------------------------------------------

    def _connect_existing(self, journal: Journal) -> tuple[Connection, Target]:
        if self.is_embedded:
            conn, record = reconnect(record_path_for(self.journal_path))
            if record.world_id != journal.run.target.identity:
                raise WorldGone(
                    f"the running embedded world is {record.world_id}, but this journal was "
                    f"made against {journal.run.target.identity}"
                )
            return conn, identify(self.spec, conn, record.world_id)
        conn = connect(self.spec, self.loaded.runbook.runbook.region)
        return conn, identify(self.spec, conn)

    def _world_state(self, create: bool) -> None:
        """Embedded world + S3 journal: the world holds the state bucket (made here, with
        versioning on), so the world is reconnected, or started first for a new run."""
        assert self.remote is not None
        record_path = record_path_for(self.journal_path)
        try:
            conn, _ = reconnect(record_path)
        except WorldGone:
            if not create:
                raise
            stop_world(record_path)
            conn, _ = self._started = start_world(record_path, self.loaded.runbook)
        s3 = conn.client("s3")
        make_state_bucket(s3, self.remote.location.bucket)
        self.remote.use_client(s3, conn.client)

    def _connect_new(self) -> tuple[Connection, Target]:
        if self.is_embedded and self._started is not None:
            conn, record = self._started
            return conn, identify(self.spec, conn, record.world_id)
        if self.is_embedded:
            record_path = record_path_for(self.journal_path)
            stop_world(record_path)
            conn, record = start_world(record_path, self.loaded.runbook)
            return conn, identify(self.spec, conn, record.world_id)
        conn = connect(self.spec, self.loaded.runbook.runbook.region)
        return conn, identify(self.spec, conn)

    def overrides_path(self) -> Path:
        """--mapping-overrides, else the file beside the journal (if the operator wrote one)."""
        default = self.journal_path.with_name(self.journal_path.stem + ".mapping-overrides.toml")
        return self.options.mapping_overrides or default

    def _check_overrides_file(self) -> None:
        """An overrides file that is not TOML of [users] is refused before anything runs (an
        inventory and backups first, then a raw error at the mapping step, helps nobody)."""
        path = self.overrides_path()
        if path.is_file():
            try:
                read_override_file(path)
            except ValueError as exc:
                raise BadInput(str(exc)) from None

    def _check_mapping(self, journal: Journal) -> None:
        """Refuse an override file that differs from the mapping the run already wrote with."""
        explicit = self.options.mapping_overrides
        try:
            refuse_if_changed(
                journal, self.loaded.runbook, self.overrides_path(), explicit is not None
            )
        except (MappingChanged, ValueError) as exc:
            raise BadInput(str(exc)) from None

    # ---- engines --------------------------------------------------------------------------

    def _engine(self, journal: Journal, clients: Any) -> Engine:
        scale = self.options.time_scale
        if scale is not None and scale != journal.run.time_scale:
            if not math.isfinite(scale) or not 0 < scale <= MAX_TIME_SCALE:
                raise BadInput(f"--time-scale must be above 0 and at most {MAX_TIME_SCALE:,.0f}")
            journal.add_audit(self.operator, f"time scale {journal.run.time_scale:g} -> {scale:g}")
            journal.run.change_scale(scale, self.operator)
        return Engine(
            runbook=self.loaded.runbook,
            journal=journal,
            store=self.store,
            clients=clients,
            options=EngineOptions(
                operator=self.operator,
                time_scale=journal.run.time_scale,
                world=self.world,
                real_account=self.spec.kind == "aws",
                mapping_overrides=self.options.mapping_overrides,
            ),
        )

    def open(self, create: bool = True) -> Engine:
        """A driving engine (hold the lock first). Creates the run when `create`."""
        self._check_overrides_file()
        if self.options.fresh and self.remote is not None:
            raise BadInput(
                "--fresh keeps the old run aside on this machine; for an S3 journal pass a new "
                "--journal s3://... URL instead (the old run stays where it is)"
            )
        if self.options.fresh:
            archived = archive_journal(self.store)
            if archived:
                print(f"previous run kept whole (journal, log, artifacts) as {archived}")
        if self.store.exists():
            journal = self.store.load()
            conn, target = self._connect_existing(journal)
            check_journal(
                journal, self.loaded, target, self.options.accept_runbook_change, self.operator
            )
            self._check_mapping(journal)
            self._journal_take_over(journal)
            engine = self._engine(journal, conn.client)
            engine.save()
            return engine
        if not create:
            raise NoRun(
                f"no run yet: no journal at {self.journal_path}; start one with `runbook run`"
            )
        conn, target = self._connect_new()
        journal = new_journal(self.loaded, target, self.operator)
        if self.is_embedded and self.options.time_scale is None:
            # a rehearsal fits its three days (and the 7-day check) into minutes
            journal.run.time_scale = default_scale(self.loaded.runbook)
        engine = self._engine(journal, conn.client)
        engine.save()
        return engine

    def _journal_take_over(self, journal: Journal) -> None:
        taken = self.s3_lock.taken_from if self.s3_lock else None
        if taken is not None:
            what = f"took over the lock of {taken.describe()}"
            print(f"runbook: {what}")
            journal.add_audit(self.operator, what)

    def open_read_only(self, connected: bool = False) -> Engine:
        """An engine over the journal as it is, for status, report and a locked TUI."""
        if self.remote is not None and self.is_embedded:
            self._world_state(create=False)
        if not self.store.exists():
            raise NoRun(
                f"no run yet: no journal at {self.journal_arg}; start one with `runbook run`"
            )
        journal = self.store.load()
        if journal.run.runbook_id != self.loaded.runbook.runbook.id:
            raise JournalError(
                f"the journal {self.journal_path} is for runbook {journal.run.runbook_id!r}, "
                f"not {self.loaded.runbook.runbook.id!r} ({self.loaded.path}); pass the runbook "
                "the run was started with"
            )
        clients: Any = _no_clients
        if connected:
            conn, _ = self._connect_existing(journal)
            clients = conn.client
        return self._engine(journal, clients)

    def reload(self, engine: Engine) -> None:
        """Re-read the journal another process writes (read-only views follow it)."""
        engine.journal = self.store.load()
