"""The Engine's core (`RunCore`): the run's runbook, journal and store, and what every command
of the engine does with them: save the journal, emit events, log, build the snapshot, make an
action's context, take a stop. The Engine (engine/run/engine.py) is a RunCore that runs; its
gates (engine/run/gates.py) and rollbacks (engine/run/rollback.py) are objects it delegates to.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.aws.target import Connection
from engine.core.clock import MAX_TIME_SCALE, Boundary, Clock, Hold
from engine.core.commands import Caller
from engine.core.context import ActionContext
from engine.core.events import (
    Alert,
    Event,
    LogLine,
    Progress,
    SnapshotChanged,
    StepStarted,
    Subscriber,
    as_log_line,
    format_log_line,
)
from engine.core.outcome import BadRequest, CommandRefused
from engine.core.throttle import WriteThrottle
from engine.core.views import NodeRef, RunSnapshot
from engine.core.world import REAL_ACCOUNT, World
from engine.plan.calls import Node
from engine.run.identity import Verifier
from engine.run.resume_check import check_resume_state
from engine.run.snapshot import Rates, build_snapshot, next_node, node_satisfied, waiting_for
from engine.runbook.model import Runbook
from engine.state.files import append_private
from engine.state.identity import Identity
from engine.state.journal import Journal, JournalStore, StepState, now, utcnow


@dataclass
class EngineOptions:
    operator: str
    time_scale: float = 1.0
    world: World = REAL_ACCOUNT  # a rehearsal plugs its own in (engine/rehearsal/world.py)
    real_account: bool = False  # a real AWS account: its clock is never scaled
    mapping_overrides: Path | None = None


@dataclass
class RunCore:
    """What the Engine, its gates and its rollbacks share: the run's runbook, journal and
    store, its subscribers, its clock and its stop; saving, logging and emitting events."""

    runbook: Runbook
    journal: Journal
    store: JournalStore
    clients: Callable[[str], Any]
    options: EngineOptions
    _subscribers: list[Subscriber] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    io_lock: threading.RLock = field(default_factory=threading.RLock)
    # writes in flight in data steps: `write_throttle.set_limit(k)` changes it during a run
    write_throttle: WriteThrottle = field(default_factory=WriteThrottle)
    _active: bool = False  # run() or rollback() is on its way (in some thread)
    _rates: Rates = field(default_factory=dict)  # the latest items/s and ETA per step and table
    _held: str | None = None  # why the checkpoint being written waits (S3 unreachable), or None
    clock_now: Callable[[], datetime] = now  # when evidence is taken (frozen in snapshot tests)
    # detach: pause and throttle at every batch boundary (engine/control/throttle.py), or None
    boundary: Boundary | None = None
    hold: Hold | None = None  # detach: waits stand still while paused
    # what must finish before the journal's lock is let go (the notifier's queue)
    on_close: list[Callable[[], object]] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_resume_state(self.runbook, self.journal)  # a broken cursor: one line, exit 2
        self.store.bind_stop(self._stop)  # a checkpoint held on S3 gives up at a stop
        self.store.on_hold = self._checkpoint_held
        owner = getattr(self.clients, "__self__", None)
        if isinstance(owner, Connection):  # a stop also ends botocore's retry backoff
            owner.stop_retries_on(self._stop)
        self.verifier = Verifier(lambda: self.clients, self.options.real_account)

    @property
    def busy(self) -> bool:
        """run() or rollback() is on its way (in some thread)."""
        return self._active

    def close(self) -> None:
        """The driver lets go of the run: what must finish first does (bounded)."""
        for closer in self.on_close:
            closer()
        self.on_close.clear()

    def identify(self, caller: Caller | None = None, ask: bool = True) -> Identity:
        """Who acts, verified (engine/run/identity.py); `caller` None: this process. `ask`
        False: no STS call (the run's thread: a hung endpoint must not hold a step)."""
        return self.verifier.verify(caller, ask)

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
        with self.io_lock:
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
        with self.io_lock:
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
        with self.io_lock:
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

    def context_for(self, step_id: str, state: StepState) -> ActionContext:
        """The context an action (or a gate's check) runs with."""
        return ActionContext(
            step_id=step_id,
            runbook=self.runbook,
            journal=self.journal,
            state=state,
            clients=self.clients,
            # follows set_time_scale; detach: pause and throttle at each batch boundary
            clock=Clock(lambda: self.options.time_scale, self._stop, self.boundary, self.hold),
            artifacts_dir=self.store.artifacts_dir,
            emit=self.emit,
            save=self.save,
            world=self.options.world,
            operator=self.options.operator,
            mapping_overrides=self.options.mapping_overrides,
            throttle=self.write_throttle,
        )

    @contextmanager
    def working(self) -> Iterator[None]:
        """run() or rollback() on its way: an earlier stop request is forgotten; when it ends,
        every subscriber gets the run as it stands."""
        self._stop.clear()
        self._active = True
        try:
            yield
        finally:
            self._active = False
            self._publish(self.snapshot())

    @property
    def stop_event(self) -> threading.Event:
        """Set by a stop: a long call (run_abandonable) is abandoned on it."""
        return self._stop

    # ---- status ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The `runbook status --json` contract: the snapshot, serialised."""
        return self.snapshot().model_dump(mode="json")
