"""Wall time and scaled, interruptible waits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# Called at every batch boundary with the stop event (a detached engine's pause and pace):
# it may wait, and returns early when a stop is requested.
Boundary = Callable[[threading.Event], None]


class Interrupted(Exception):
    """A stop was requested; the action checkpoints and unwinds."""


class Clock:
    """`time_scale` divides every wait, for rehearsals. `stop` interrupts waits at once."""

    def __init__(
        self,
        time_scale: float | Callable[[], float] = 1.0,
        stop: threading.Event | None = None,
        boundary: Boundary | None = None,
    ) -> None:
        # a callable follows a rehearsal's clock as the operator changes it mid-step
        self._scale = time_scale if callable(time_scale) else (lambda: float(time_scale))
        if self.time_scale <= 0:
            raise ValueError("time scale must be positive")
        self.stop = stop or threading.Event()
        self.boundary = boundary

    @property
    def time_scale(self) -> float:
        return self._scale()

    def monotonic(self) -> float:
        return time.monotonic()

    def check(self) -> None:
        """Between batches: wait while paused or paced (`boundary`), unwind on a stop."""
        if self.boundary is not None:
            self.boundary(self.stop)
        if self.stop.is_set():
            raise Interrupted()

    def sleep_real(self, seconds: float) -> None:
        """Sleep wall seconds (polling a backup, backing off); never scaled."""
        if self.stop.wait(max(0.0, seconds)):
            raise Interrupted()

    def sleep_plan(self, plan_seconds: float) -> None:
        """Sleep a duration of the plan's timeline, divided by the time scale."""
        self.sleep_real(plan_seconds / self.time_scale)
