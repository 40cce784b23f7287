"""Thread-safe pacing of capacity units: a token bucket with debt, a units/s meter, the
budget's AIMD factor, and per-company heat and ceilings (docs/performance.md, "Capacity
budget"). Time comes from a `now` callable, so the tests step it themselves.

A request is charged what it is expected to cost before it is sent (`charge`), and corrected
by what DynamoDB says it consumed (`ConsumedCapacity`) once answered (`refund`/`charge`);
`wait` lets the next one go only while the bucket is not in debt. The bucket holds at most one
second of units (or `burst_seconds`): an idle minute is not spent in one burst.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

Now = Callable[[], float]


class UnitBucket:
    def __init__(
        self, rate: float | None = None, now: Now = time.monotonic, burst_seconds: float = 1.0
    ) -> None:
        self._cond = threading.Condition()
        self._now = now
        self._burst = burst_seconds  # the most it holds: this many seconds of units
        self._rate = rate  # units per second; None: unbounded
        self._tokens = self._most()
        self._at = now()

    def _most(self) -> float:
        return (self._rate or 0.0) * self._burst

    @property
    def rate(self) -> float | None:
        return self._rate

    def set_rate(self, rate: float | None) -> None:
        with self._cond:
            self._refill()
            self._rate = rate
            if rate is not None:
                self._tokens = min(self._tokens, self._most())
            self._cond.notify_all()

    def _refill(self) -> None:
        now = self._now()
        if self._rate is not None:
            self._tokens = min(self._most(), self._tokens + (now - self._at) * self._rate)
        self._at = now

    def ready(self) -> bool:
        """Whether a request may go now (the bucket is not in debt)."""
        with self._cond:
            self._refill()
            return self._rate is None or self._tokens >= 0

    def holds(self, units: float) -> bool:
        """Whether it holds `units` now (a full bucket holds any request)."""
        with self._cond:
            self._refill()
            if self._rate is None:
                return True
            return self._tokens >= min(units, self._most())

    def delay(self) -> float:
        """Seconds until the bucket is out of debt (0: now)."""
        with self._cond:
            self._refill()
            if self._rate is None or self._tokens >= 0:
                return 0.0
            return -self._tokens / self._rate

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` for the bucket to be out of debt; False if it is not yet."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                self._refill()
                if self._rate is None or self._tokens >= 0:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, -self._tokens / self._rate))

    def charge(self, units: float) -> None:
        with self._cond:
            self._refill()
            self._tokens -= units

    def refund(self, units: float) -> None:
        with self._cond:
            self._refill()
            self._tokens += units
            if self._rate is not None:
                self._tokens = min(self._tokens, self._most())
            self._cond.notify_all()


class UnitMeter:
    """Units consumed per second over a sliding window (what ConsumedCapacity said)."""

    def __init__(self, window_seconds: float = 10.0, now: Now = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._now = now
        self._window = window_seconds
        self._began = now()
        self._samples: deque[tuple[float, float]] = deque()
        self.total = 0.0

    def add(self, units: float) -> None:
        with self._lock:
            now = self._now()
            self._samples.append((now, units))
            self.total += units
            self._trim(now)

    def carry(self, units: float) -> None:
        """Units consumed before this meter began (a resumed step): in the total, not the rate."""
        with self._lock:
            self.total += units

    def _trim(self, now: float) -> None:
        while self._samples and now - self._samples[0][0] > self._window:
            self._samples.popleft()

    def rate(self) -> float:
        with self._lock:
            now = self._now()
            self._trim(now)
            span = min(self._window, max(now - self._began, 1e-9))
            return sum(u for _, u in self._samples) / max(span, 1.0)


class Aimd:
    """The budget's factor: halved on every rise (multiplicative decrease, never below
    `floor`), given back `step` at a time by each poll without one (additive increase)."""

    def __init__(self, step: float = 0.1, floor: float = 1 / 64) -> None:
        self._lock = threading.Lock()
        self.step, self.floor = step, floor
        self.factor = 1.0
        self.reason: str | None = None  # why it last backed off; None once fully recovered

    def back_off(self, reason: str) -> float:
        with self._lock:
            self.factor = max(self.floor, self.factor / 2)
            self.reason = reason
            return self.factor

    def recover(self) -> float:
        with self._lock:
            self.factor = min(1.0, self.factor + self.step)
            if self.factor >= 1.0:
                self.reason = None
            return self.factor


class CompanyHeat:
    """Units per company per whole second: the peak rate of each (the step's hottest)."""

    def __init__(self, now: Now = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._now = now
        self._second: dict[str, tuple[int, float]] = {}  # company -> (second, units in it)
        self.peak: dict[str, float] = {}

    def add(self, company: str, units: float) -> None:
        with self._lock:
            second = int(self._now())
            at, got = self._second.get(company, (second, 0.0))
            got = got + units if at == second else units
            self._second[company] = (second, got)
            if got > self.peak.get(company, 0.0):
                self.peak[company] = got

    def hottest(self, n: int) -> list[tuple[str, float]]:
        with self._lock:
            return sorted(self.peak.items(), key=lambda kv: (-kv[1], kv[0]))[:n]

    def carry(self, peaks: dict[str, float]) -> None:
        """Peaks seen before this count began (a resumed step)."""
        with self._lock:
            for company, rate in peaks.items():
                self.peak[company] = max(self.peak.get(company, 0.0), rate)


class CompanyGate:
    """Each company's writes in flight (at most `share_of_window` of the window) and its own
    bucket of units (its partition's ceiling): one large company cannot hold the window while
    the others wait, nor run its partition dry."""

    def __init__(self, ceiling: float | None, now: Now = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._now = now
        self._ceiling = ceiling
        self._buckets: dict[str, UnitBucket] = {}
        self._in_flight: dict[str, int] = {}

    @property
    def ceiling(self) -> float | None:
        return self._ceiling

    def set_ceiling(self, ceiling: float | None) -> None:
        with self._lock:
            self._ceiling = ceiling
            for bucket in self._buckets.values():
                bucket.set_rate(ceiling)

    def _bucket(self, company: str) -> UnitBucket:
        bucket = self._buckets.get(company)
        if bucket is None:
            bucket = self._buckets[company] = UnitBucket(self._ceiling, self._now)
        return bucket

    def try_admit(self, company: str, units: float, most: int) -> bool:
        """Admit a request of `units` for `company` now, if it has fewer than `most` in flight
        and its bucket holds the units (or is full, for a request larger than a second's):
        never in debt, so in any T seconds a company takes at most its ceiling x (T + 1)."""
        with self._lock:
            bucket = self._bucket(company)
            if self._in_flight.get(company, 0) >= most or not bucket.holds(units):
                return False
            bucket.charge(units)
            self._in_flight[company] = self._in_flight.get(company, 0) + 1
            return True

    def settle(self, company: str, charged: float, consumed: float) -> None:
        with self._lock:
            self._in_flight[company] = max(0, self._in_flight.get(company, 0) - 1)
            bucket = self._bucket(company)
        if consumed > charged:
            bucket.charge(consumed - charged)
        elif charged > consumed:
            bucket.refund(charged - consumed)

    def delay(self) -> float:
        """Seconds until some company's bucket is out of debt (0 when one is now)."""
        with self._lock:
            delays = [b.delay() for b in self._buckets.values()]
        return min(delays, default=0.0)


class CapacityBucket:
    """A provisioned table's capacity as DynamoDB spends it (the server's side, not the
    client's pacing): units refill at `rate` per second up to `burst_seconds` of them. Its
    owner admits a request when it `has` the units (all or nothing: the bench's model) or
    while it is `solvent` (the request may overdraw it: the rehearsal's). Not locked: its
    owner takes several buckets at once under its own lock."""

    def __init__(self, rate: float, now: Now = time.monotonic, burst_seconds: float = 1.0) -> None:
        self.rate, self.now, self.burst = rate, now, burst_seconds
        self.tokens, self.at = rate * burst_seconds, now()

    def refill(self) -> None:
        t = self.now()
        self.tokens = min(self.rate * self.burst, self.tokens + (t - self.at) * self.rate)
        self.at = t

    def set_rate(self, rate: float) -> None:
        self.refill()
        self.rate = rate
        self.tokens = min(self.tokens, rate * self.burst)

    def has(self, units: float) -> bool:
        self.refill()
        return self.tokens >= units

    def solvent(self) -> bool:
        """Not in debt: a request that may overdraw it is admitted."""
        self.refill()
        return self.tokens > 0

    def take(self, units: float) -> None:
        self.tokens -= units
