"""The live knobs an operator turns on a running engine: pause, and the throttle.

`OperatorThrottle.at_boundary` is the engine's `Clock` boundary hook: every action calls
`clock.check()` between batches, so a pause holds the run at its next boundary, with everything
before it checkpointed. A batch of writes says how many items it writes (`clock.check(writes)`):
only those are throttled and counted against `segments`; flags, waits, polls and reads are not
(a rate of 2 items/s must not make four flag updates take 38 s). A stop always wins.
`OperatorThrottle.in_wait` is its hold hook inside waits (watch windows, polls): a pause holds
there too, and the wait's time (plan time, for a watch window) stands still until the resume.

The throttle's setters are this one small interface:
- `rate`: items written per second, applied here: a batch of n items is admitted n/rate seconds
  after the one before, across all threads of the step (parallel-scan segments included).
- `in_flight`: concurrent writes; handed to the engine's write throttle (`set_limit(k)` /
  `clear_limit()`, engine/core/throttle.py) when this build has one, else recorded only.
- `capacity_share`: the migration's share of its tables' capacity (0 < share <= 1), handed to
  the write throttle (`set_capacity_share`); migrate_entity's budget follows it at once.
- `segments`: how many threads may be writing a batch at once (parallel-scan segments at
  work), applied here: a thread let through a boundary counts until it comes back to one (or
  for BATCH_GONE_SECONDS, once it left the loop). The scan keeps its segment count (it is part
  of the cursors); the other segments wait at their boundary.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

BATCH_ITEMS = 25  # the architecture's write batch: what one boundary admits
POLL_SECONDS = 0.1  # a stop is seen this quickly while paused or throttled
# A thread let through a boundary is writing its batch until it comes back; one that has not
# come back for this long has left the loop (its segment ended) and holds nothing up.
BATCH_GONE_SECONDS = 3.0


class InFlightThrottle(Protocol):
    """What the engine's write throttle offers (writepath's WriteThrottle)."""

    def set_limit(self, k: int) -> int: ...

    def clear_limit(self) -> None: ...

    def set_capacity_share(self, share: float | None) -> float | None: ...


@dataclass(frozen=True)
class ThrottleSettings:
    rate: float | None = None  # items per second; None: no limit
    in_flight: int | None = None
    segments: int | None = None
    in_flight_applied: bool = False  # whether the writers honour `in_flight` in this build
    capacity_share: float | None = None  # None: the runbook's capacity.share

    def describe(self) -> str:
        parts = [
            f"rate {self.rate:g} items/s" if self.rate else "rate unlimited",
            f"in-flight {self.in_flight}" if self.in_flight else "in-flight as the runbook says",
        ]
        if self.segments:
            parts.append(f"segments {self.segments} at once")
        if self.capacity_share:
            parts.append(f"capacity share {self.capacity_share:.0%}")
        return ", ".join(parts)


class OperatorThrottle:
    def __init__(
        self,
        write_throttle: InFlightThrottle | None = None,
        on_hold: Callable[[], None] | None = None,
    ) -> None:
        self._cond = threading.Condition()  # an RLock inside: on_hold may read `held`
        self._on_hold = on_hold  # the run came to stand at a boundary, or left it
        self._paused = False
        self._held = 0  # threads waiting at a boundary because of the pause
        self._writing: dict[int, float] = {}  # thread -> when it was let through (its batch)
        self._shown_held = False  # what on_hold last announced
        self._settings = ThrottleSettings()
        self._last_batch = 0.0
        self._write_throttle = write_throttle

    # ---- the operator's side (any thread) -------------------------------------------------

    def pause(self) -> bool:
        """True when this paused the run (False: it already was)."""
        with self._cond:
            was, self._paused = self._paused, True
            return not was

    def resume(self) -> bool:
        with self._cond:
            was, self._paused = self._paused, False
            self._cond.notify_all()
            return was

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def held(self) -> bool:
        """Whether the run actually stands now: paused, a thread waits at a boundary, and no
        other thread is still writing the batch it began before the pause."""
        with self._cond:
            return self._held_locked()

    @property
    def waiting(self) -> int:
        """Threads standing at a boundary because of the pause."""
        return self._held

    def _held_locked(self) -> bool:
        return self._paused and self._held > 0 and self._writers() == 0

    def _writers(self, exclude: int | None = None) -> int:
        """Threads writing the batch they were let through for (not gone, not `exclude`)."""
        now = time.monotonic()
        alive = {t.ident for t in threading.enumerate()}
        return sum(
            1
            for ident, since in self._writing.items()
            if ident != exclude and ident in alive and now - since < BATCH_GONE_SECONDS
        )

    def set_throttle(self, **changes: float | int | None) -> ThrottleSettings:
        """Change `rate`, `in_flight` and/or `segments` (None: back to no limit, or to the
        runbook's value); the others keep their values."""
        unknown = set(changes) - {"rate", "in_flight", "segments", "capacity_share"}
        if unknown:
            raise ValueError(f"no throttle setting {', '.join(sorted(unknown))}")
        with self._cond:
            now = self._settings
            applied = now.in_flight_applied
            if "in_flight" in changes:
                applied = self._apply_in_flight(changes["in_flight"])  # type: ignore[arg-type]
            share = changes.get("capacity_share", now.capacity_share)
            if share is not None and not 0 < share <= 1:
                raise ValueError("capacity share must be above 0 and at most 1")
            if "capacity_share" in changes and self._write_throttle is not None:
                self._write_throttle.set_capacity_share(share)
            self._settings = ThrottleSettings(
                rate=changes.get("rate", now.rate),
                in_flight=changes.get("in_flight", now.in_flight),  # type: ignore[arg-type]
                segments=changes.get("segments", now.segments),  # type: ignore[arg-type]
                in_flight_applied=applied,
                capacity_share=share,
            )
            self._cond.notify_all()
            return self._settings

    def _apply_in_flight(self, k: int | None) -> bool:
        if self._write_throttle is None:
            return False
        if k is None:
            self._write_throttle.clear_limit()
        else:
            self._write_throttle.set_limit(k)
        return True

    @property
    def settings(self) -> ThrottleSettings:
        return self._settings

    # ---- the engine's side: the Clock boundary hook ----------------------------------------

    def at_boundary(self, stop: threading.Event, writes: int = 0) -> None:
        me = threading.get_ident()
        with self._cond:
            if self._writing.pop(me, None) is not None:  # its batch is done: a slot is free
                self._cond.notify_all()
            holding = False
            try:
                while not stop.is_set():
                    if self._paused:
                        if not holding:
                            self._held, holding = self._held + 1, True
                        self._hold_changed()
                        self._cond.wait(POLL_SECONDS)
                        continue
                    if holding:
                        self._held, holding = self._held - 1, False
                        self._hold_changed()
                    if not writes:  # nothing written next: pause only, never throttled
                        return
                    if self._admit(me, writes):
                        self._writing[me] = time.monotonic()
                        return
            finally:
                if holding:
                    self._held -= 1
                    self._hold_changed()

    def in_wait(self, stop: threading.Event) -> None:
        """The engine's `Clock` hold hook, inside a wait (a watch window's tick, a poll): while
        paused the thread stands here, counted as held, and the wait's time does not run."""
        with self._cond:
            if not self._paused or stop.is_set():
                return
            if self._writing.pop(threading.get_ident(), None) is not None:
                self._cond.notify_all()  # a thread in a wait writes nothing
            self._held += 1
            try:
                self._hold_changed()
                while self._paused and not stop.is_set():
                    self._cond.wait(POLL_SECONDS)
            finally:
                self._held -= 1
                self._hold_changed()

    def _admit(self, me: int, writes: int) -> bool:
        """Segments, then rate: True to let a batch go now, else waits a little (locked)."""
        limit = self._settings.segments
        if limit and self._writers(exclude=me) >= limit:
            self._cond.wait(POLL_SECONDS)
            return False
        rate = self._settings.rate
        if not rate:
            return True
        now = time.monotonic()
        due = self._last_batch + writes / rate
        if now >= due:
            self._last_batch = now
            return True
        self._cond.wait(min(POLL_SECONDS, due - now))
        return False

    def _hold_changed(self) -> None:
        """Announce when the run comes to stand, or leaves it (not on every poll)."""
        held = self._held_locked()
        if held != self._shown_held:
            self._shown_held = held
            if self._on_hold is not None:
                self._on_hold()
