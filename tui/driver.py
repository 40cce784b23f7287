"""What drives the engine for the console: its worker thread, stops, and the hand-over of its
events to the UI thread. A read-only console follows another process's journal instead.

The UI never reads the engine's live journal while a worker runs: it renders the snapshots the
engine sends (`SnapshotChanged`). Commands (tick, ack) are called only while the engine is idle.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.context import RateMeter, eta_seconds
from engine.events import Event
from engine.lock import Holder, is_locked
from engine.runner import Engine, Outcome
from engine.snapshot import RunSnapshot
from tui.messages import WorkEnded, wrap

if TYPE_CHECKING:
    from textual.app import App
    from textual.clock import Clock


class EngineDriver:
    """Runs `Engine.run` / `Engine.rollback` in one thread worker at a time."""

    def __init__(self, app: App[Any], engine: Engine) -> None:
        self.app = app
        self.engine = engine
        self.busy = False  # a worker was started and has not ended yet
        self.idle = threading.Event()
        self.idle.set()
        self.ui_thread: int | None = None
        self.attached = False

    # ---- events -----------------------------------------------------------------------------

    def attach(self) -> None:
        self.ui_thread = threading.get_ident()
        self.engine.subscribe(self._from_engine)
        self.attached = True

    def detach(self) -> None:
        if self.attached:
            self.engine.unsubscribe(self._from_engine)
            self.attached = False

    def _from_engine(self, event: Event) -> None:
        """Any thread: hand over to the UI thread (post_message is thread-safe)."""
        self.app.post_message(wrap(event))

    # ---- work --------------------------------------------------------------------------------

    def snapshot(self) -> RunSnapshot:
        """Only while idle (the engine thread mutates the journal while it runs)."""
        return self.engine.snapshot()

    def start_run(self, approved: str | None) -> None:
        """Run until a human is needed, stopping short of a destructive step other than
        `approved` (which the operator has just confirmed)."""
        self._start(
            "engine",
            lambda: self.engine.run(pause_before_destructive=True, approved=approved),
        )

    def start_rollback(self, phase: str) -> None:
        by = self.engine.options.operator
        # the operator confirmed in the modal already
        self._start("rollback", lambda: self.engine.rollback(phase, by, lambda w, t: True))

    def _start(self, group: str, call: Callable[[], Outcome]) -> None:
        self.busy = True
        self.idle.clear()

        def work() -> None:
            outcome, error = None, None
            try:
                outcome = call()
            except Exception as exc:  # shown to the operator; the journal holds what was done
                error = exc
            finally:
                self.idle.set()
            self.app.post_message(WorkEnded(group, outcome, error))

        self.app.run_worker(work, thread=True, exclusive=True, group=group, exit_on_error=False)

    def ended(self) -> None:
        self.busy = False

    def stop(self) -> None:
        """Thread-safe: the running action checkpoints at its next check and unwinds."""
        self.engine.request_stop()


class Follower:
    """Read-only: re-reads the driver's journal; items/s and ETA come from its checkpoints."""

    def __init__(
        self,
        engine: Engine,
        reload: Callable[[Engine], None] | None,
        holder: Holder | None,
        clock: Clock | None,
    ) -> None:
        self.engine = engine
        self.reload = reload
        self.holder = holder
        self.clock = clock
        self.meters: dict[tuple[str, str], RateMeter] = {}

    def snapshot(self) -> RunSnapshot:
        journal = self.engine.journal
        running = [sid for sid, s in journal.steps.items() if s.status == "running"]
        rates: dict[tuple[str, str], tuple[float | None, float | None]] = {}
        for step_id in running:
            for table, prog in journal.steps[step_id].progress.items():
                meter = self.meters.setdefault((step_id, table), RateMeter())
                now = self.clock.time if self.clock else time.monotonic()
                rate = meter.add(now, prog.done)
                rates[(step_id, table)] = (rate, eta_seconds(prog.done, prog.total, rate))
        driver = f"{self.holder.user}@{self.holder.host}" if self.holder else None
        return self.engine.snapshot(
            driver=driver, active=self.holder is not None and bool(running), rates=rates
        )

    def follow(self) -> RunSnapshot:
        """Raises what re-reading raises (a journal mid-replace): the caller keeps its view.
        Without `reload` the view is frozen (tests): the holder given stays."""
        if self.reload is not None:
            self.reload(self.engine)
            self.holder = is_locked(self.engine.store.path)  # the driver may have left
        return self.snapshot()
