"""The console's one driver: the screens' commands go through the engine's commands
(`EngineCommands`, engine/core/commands.py), whichever engine it is: the local `Engine`, or a
detached one's `RemoteEngine`. What differs, who runs the work and where events come from, is
its link (tui/links.py): a worker thread of this process, or the detached engine's socket.

The UI never reads the engine's live journal while a worker runs: it renders the snapshots the
engine sends (`SnapshotChanged`). Commands (tick, ack) are called only while the engine is idle.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from engine.control.client import EngineGone
from engine.core.commands import (
    Caller,
    ControlState,
    EngineCommands,
    RollbackPreview,
    ThrottleView,
)
from engine.core.outcome import CommandRefused
from engine.core.views import RunSnapshot

if TYPE_CHECKING:
    from textual.app import App

T = TypeVar("T")


class Link(Protocol):
    """Where the driver's work runs and its events come from (tui/links.py)."""

    remote: bool

    def attach(self) -> None: ...
    def detach(self) -> None: ...
    def snapshot(self) -> RunSnapshot: ...
    def start_run(self, approved: str | None) -> None: ...
    def start_rollback(self, phase: str) -> None: ...
    def ended(self) -> None: ...
    def stop(self) -> None: ...
    def pause(self) -> None: ...
    def throttle(self, **settings: int | float | None) -> str: ...


class Driver:
    def __init__(
        self,
        app: App[Any],
        engine: EngineCommands,
        operator: str,
        real_account: bool,
        pid: int | None = None,
    ) -> None:
        self.app = app
        self.engine = engine
        self.operator = operator
        self.real_account = real_account
        self.pid = pid  # a detached engine's process
        self.link: Link | None = None  # set by the link as it is made
        self.busy = False  # work (a run or a rollback) was started and has not ended yet
        self.idle = threading.Event()
        self.idle.set()
        # a detached engine's own state, as it last said (its `control` messages)
        self.activity = "idle"
        self.pause_state: str | None = None  # "pausing" | "paused" | None
        self.throttle_state = ThrottleView()

    @property
    def remote(self) -> bool:
        """The engine is another process: leaving this console never stops it."""
        return self.link is not None and self.link.remote

    @property
    def paused(self) -> bool:
        return self.pause_state is not None

    @property
    def clock_changeable(self) -> bool:
        return not self.real_account  # a real account stays at real time

    def controlled(self, control: ControlState) -> None:
        """A detached engine said how it stands (UI-independent: any thread)."""
        self.activity = control.activity
        self.pause_state = control.pause
        self.throttle_state = control.throttle
        self.busy = control.working
        (self.idle.clear if self.busy else self.idle.set)()

    # ---- work: the link's ---------------------------------------------------------------------

    def _link(self) -> Link:
        assert self.link is not None, "a driver is made with its link (tui/links.py)"
        return self.link

    def attach(self) -> None:
        self._link().attach()

    def detach(self) -> None:
        self._link().detach()

    def snapshot(self) -> RunSnapshot:
        return self._link().snapshot()

    def start_run(self, approved: str | None) -> None:
        """Run (or go on) until a human is needed, stopping short of a destructive step other
        than `approved` (which the operator has just confirmed)."""
        self._link().start_run(approved)

    def start_rollback(self, phase: str) -> None:
        """The operator confirmed in the modal already."""
        self._link().start_rollback(phase)

    def ended(self) -> None:
        self._link().ended()

    def stop(self) -> None:
        """Thread-safe: the running action checkpoints at its next check and unwinds."""
        self._link().stop()

    def pause(self) -> None:
        self._link().pause()

    def throttle(self, **settings: int | float | None) -> str:
        """`in_flight` and/or `rate` (None: the runbook's value / no limit); journaled by the
        engine; what it now applies, in words."""
        return self._link().throttle(**settings)

    # ---- commands the screens give: the same for every engine ----------------------------------

    def _command(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except EngineGone:
            raise CommandRefused("the detached engine is gone") from None

    def tick(self, gate_id: str, item_id: str, stand_in: str | None = None) -> None:
        """`stand_in`: a rehearsal's second identity (`--as`), journaled as not verified."""
        caller = Caller(rehearsal_as=stand_in) if stand_in else None
        self._command(lambda: self.engine.tick(gate_id, item_id, self.operator, caller=caller))

    def untick(self, gate_id: str, item_id: str) -> None:
        self._command(lambda: self.engine.untick(gate_id, item_id, self.operator))

    def evaluate_gate(self, gate_id: str) -> None:
        self._command(lambda: self.engine.evaluate_gate(gate_id))  # the snapshot brings it

    def decide(self, gate_id: str, go: bool, note: str, override: str | None) -> None:
        self._command(
            lambda: self.engine.decide(gate_id, go, self.operator, note=note, override=override)
        )

    def ack(self, step_id: str, note: str) -> None:
        self._command(lambda: self.engine.ack(step_id, self.operator, note=note))

    def preview_rollback(self, phase: str) -> RollbackPreview:
        return self._command(lambda: self.engine.preview_rollback(phase))

    def set_time_scale(self, scale: float) -> None:
        self._command(lambda: self.engine.set_time_scale(scale, self.operator))
