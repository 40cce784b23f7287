"""How many writes a data step keeps in flight: a small thread-safe throttle.

The runbook sets the step's default (`in_flight`, e.g. 16); an operator may change it during a
run with `set_limit(k)` (from any thread: a key binding, a socket command); `clear_limit()`
gives the runbook's value back. The writers ask `acquire()` before each request and `release()`
after it. Throttling errors halve the window (multiplicative decrease, never below 1); each
success grows it by 1/window, so about one more slot per round trip (additive increase), back
up to the limit: AIMD, as TCP does.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class ThrottleState:
    in_flight: int  # requests being answered now
    window: int  # what AIMD allows now (<= limit)
    limit: int  # the operator's or the runbook's ceiling
    throttled: int  # throttling errors seen since the step began


class WriteThrottle:
    def __init__(self, default: int = 16, ceiling: int | None = None) -> None:
        self._cond = threading.Condition()
        self._default = max(1, default)
        self._override: int | None = None
        self._ceiling = ceiling
        self._window = float(self._limit_locked())
        self._in_flight = 0
        self._throttled = 0
        self._capacity_share: float | None = None  # the operator's; None: the runbook's

    # --- configuration ------------------------------------------------------------------------

    def _limit_locked(self) -> int:
        k = self._override if self._override is not None else self._default
        return max(1, min(k, self._ceiling) if self._ceiling else k)

    def configure(self, default: int, ceiling: int | None = None) -> None:
        """A step starts: the runbook's value and the connection pool's size. An operator's
        `set_limit` made earlier in the run still wins."""
        with self._cond:
            self._default = max(1, default)
            self._ceiling = ceiling
            self._window = float(self._limit_locked())
            self._throttled = 0
            self._in_flight = 0  # a step starts with nothing in flight (a stop drops queued work)
            self._cond.notify_all()

    def set_limit(self, k: int) -> int:
        """The operator's in-flight limit, from now on (any thread). Returns the limit that
        applies (capped by the connection pool)."""
        if k < 1:
            raise ValueError("in-flight limit must be at least 1")
        with self._cond:
            self._override = k
            limit = self._limit_locked()
            self._window = float(limit)
            self._cond.notify_all()
            return limit

    def clear_limit(self) -> None:
        with self._cond:
            self._override = None
            self._window = min(self._window, float(self._limit_locked()))
            self._cond.notify_all()

    @property
    def capacity_share(self) -> float | None:
        """The operator's share of the tables' capacity (`runbook throttle --capacity-share`),
        or None: the runbook's. Kept for later steps, like the in-flight limit."""
        return self._capacity_share

    def set_capacity_share(self, share: float | None) -> float | None:
        if share is not None and not 0 < share <= 1:
            raise ValueError("capacity share must be above 0 and at most 1")
        with self._cond:
            self._capacity_share = share
            return share

    # --- the writers ------------------------------------------------------------------------

    def acquire(self, timeout: float) -> bool:
        """One slot; False after `timeout` seconds without one (so callers can check a stop)."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self._in_flight < int(self._window), timeout)
            if ok:
                self._in_flight += 1
            return ok

    def release(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify()

    def on_success(self) -> None:
        with self._cond:
            limit = self._limit_locked()
            if self._window < limit:
                self._window = min(float(limit), self._window + 1.0 / self._window)
                self._cond.notify()

    def on_throttle(self) -> None:
        with self._cond:
            self._throttled += 1
            self._window = max(1.0, self._window / 2)

    def state(self) -> ThrottleState:
        with self._cond:
            return ThrottleState(
                self._in_flight, int(self._window), self._limit_locked(), self._throttled
            )
