"""Wall time and scaled, interruptible waits that stand still while a detached engine is paused."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime

# Called at every boundary with the stop event and the items about to be written (a detached
# engine's pause, and its pace for writes only): it may wait, and returns early on a stop.
Boundary = Callable[[threading.Event, int], None]
# Called inside waits with the stop event: returns at once unless the run is paused, else
# when it is resumed or stopped (a detached engine's pause; no pacing here, waits write nothing).
Hold = Callable[[threading.Event], None]

POLL_SECONDS = 0.1  # a wait looks at the pause and the scale this often (a stop: at once)


class Interrupted(Exception):
    """A stop was requested; the action checkpoints and unwinds."""


class Clock:
    """`time_scale` divides every wait, for rehearsals. `stop` interrupts waits at once; while
    `hold` holds (paused), a wait's time does not run: it goes on where it was on resume."""

    def __init__(
        self,
        time_scale: float | Callable[[], float] = 1.0,
        stop: threading.Event | None = None,
        boundary: Boundary | None = None,
        hold: Hold | None = None,
    ) -> None:
        # a callable follows a rehearsal's clock as the operator changes it mid-step
        self._scale = time_scale if callable(time_scale) else (lambda: float(time_scale))
        if self.time_scale <= 0:
            raise ValueError("time scale must be positive")
        self.stop = stop or threading.Event()
        self.boundary = boundary
        self.hold = hold

    @property
    def time_scale(self) -> float:
        return self._scale()

    def monotonic(self) -> float:
        return time.monotonic()

    def check(self, writes: int = 0) -> None:
        """Between batches: wait while paused, unwind on a stop. `writes`: the items the next
        batch writes, paced by an operator's rate; flags, polls and reads pass 0 (unpaced)."""
        if self.boundary is not None:
            self.boundary(self.stop, writes)
        if self.stop.is_set():
            raise Interrupted()

    def sleep_real(self, seconds: float) -> None:
        """Sleep wall seconds (polling a backup, backing off); never scaled."""
        self._sleep(seconds, lambda: 1.0)

    def sleep_plan(self, plan_seconds: float) -> None:
        """Sleep a duration of the plan's timeline, divided by the time scale (followed as it
        changes mid-wait)."""
        self._sleep(plan_seconds, self._scale)

    def _sleep(self, amount: float, rate: Callable[[], float]) -> None:
        """Let `amount` pass at `rate` units per wall second; paused time does not count."""
        if self.hold is None and rate is not self._scale:  # wall time, nothing to follow
            if self.stop.wait(max(0.0, amount)):
                raise Interrupted()
            return
        left = amount
        while left > 0:
            if self.hold is not None:
                self.hold(self.stop)  # paused: the wait stands still here until resumed
            if self.stop.is_set():
                raise Interrupted()
            speed = rate()
            began = time.monotonic()
            if self.stop.wait(min(left / speed, POLL_SECONDS)):
                raise Interrupted()
            left -= (time.monotonic() - began) * speed


ScaleStep = tuple[datetime, float, float]  # when, from scale, to scale
# the fastest clock: the plan's 7-day wait in 0.06 s; beyond it only numbers grow unreadable
MAX_TIME_SCALE = 10_000_000.0


def plan_seconds_between(
    changes: Sequence[ScaleStep], current: float, start: datetime, end: datetime
) -> float:
    """Plan time that passed between two wall times, each stretch at the scale it ran at."""
    if end <= start:
        return 0.0
    if not changes:
        return (end - start).total_seconds() * current
    scale = changes[0][1]
    total, t = 0.0, start
    for at, _, to_scale in changes:
        if at <= t:
            scale = to_scale
            continue
        if at >= end:
            break
        total += (at - t).total_seconds() * scale
        t, scale = at, to_scale
    return total + (end - t).total_seconds() * scale
