"""What the Engine's mixins (engine/run/gates.py, engine/run/rollback.py) use of it.

`engine.run.engine.Engine` is a dataclass: a mixin defines no fields. The engine supplies the state
and methods below; they are declared for the type checker only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.core.context import ActionContext
    from engine.core.events import Event
    from engine.core.views import NodeRef, RunSnapshot
    from engine.plan.calls import Node
    from engine.runbook.model import Runbook
    from engine.state.journal import Journal, StepState


class EngineBase:
    """The part of the Engine its mixins see."""

    if TYPE_CHECKING:
        runbook: Runbook
        journal: Journal
        _stop: threading.Event
        _io_lock: threading.RLock
        _active: bool
        clock_now: Callable[[], datetime]

        def save(self) -> None: ...
        def log(self, message: str, level: str = "info", step_id: str | None = None) -> None: ...
        def emit(self, event: Event) -> None: ...
        def sequence(self) -> list[Node]: ...
        def waiting(self) -> NodeRef | None: ...
        def snapshot(self) -> RunSnapshot: ...
        def _publish(self, snapshot: RunSnapshot) -> None: ...
        def _context(self, step_id: str, state: StepState) -> ActionContext: ...
