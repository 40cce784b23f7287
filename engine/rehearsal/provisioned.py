"""Provisioned write capacity as DynamoDB spends it, for the embedded world's moto server
(engine/rehearsal/moto_capacity.py answers the throttles): one bucket per table refilled at its
WriteCapacityUnits per second, and the counts a test or a user reads from outside (a JSON file
beside the world record, rewritten while it changes).

The buckets keep `burst_seconds` (1 s) of unused units, not DynamoDB's 300 s: a rehearsal lasts
minutes, and five minutes of burst would hide a migration that takes more than its share
(docs/performance.md, "The rehearsal's capacity").
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.core.buckets import CapacityBucket, Now

BURST_SECONDS = 1.0
FLUSH_SECONDS = 0.2  # the counts file is at most this stale


@dataclass
class CallerCounts:
    """One caller's writes to one table: requests, throttled requests, units consumed (in all
    and per whole second since the model began)."""

    requests: int = 0
    throttled: int = 0
    units: float = 0.0
    units_by_second: dict[int, float] = field(default_factory=lambda: defaultdict(float))

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "throttled": self.throttled,
            "units": round(self.units, 1),
            "units_by_second": {
                str(s): round(u, 1) for s, u in sorted(self.units_by_second.items())
            },
        }


class ProvisionedCapacity:
    """The write buckets of every provisioned table a request touched, and their counts."""

    def __init__(self, burst_seconds: float = BURST_SECONDS, now: Now = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._now = now
        self.burst_seconds = burst_seconds
        self.began = now()
        self.version = 0  # bumped on every admission: the counts file is rewritten after one
        self._buckets: dict[str, CapacityBucket] = {}
        self._counts: dict[str, dict[str, CallerCounts]] = defaultdict(
            lambda: defaultdict(CallerCounts)
        )
        self._callers: dict[str, CallerCounts] = defaultdict(CallerCounts)

    def _bucket(self, table: str, write_units: float) -> CapacityBucket:
        bucket = self._buckets.get(table)
        if bucket is None:
            bucket = self._buckets[table] = CapacityBucket(
                write_units, self._now, self.burst_seconds
            )
        elif bucket.rate != write_units:  # UpdateTable changed it
            bucket.set_rate(write_units)
        return bucket

    def admit(self, caller: str, demand: dict[str, tuple[float, float]]) -> set[str]:
        """Take one request's units, `demand`: table -> (units, the table's WCU now), from
        every table at once, or none. Returns the tables in debt (empty: admitted).

        A request is admitted while every table it writes is not in debt, and takes all its
        units, overdrawing if it must: the next requests wait until the debt is paid back.
        All or nothing per request would let an application's 1 WCU writes slip through the
        gaps a large transaction cannot use, and hide the very crowding out the migration's
        budget exists to prevent."""
        with self._lock:
            self.version += 1
            buckets = {t: self._bucket(t, wcu) for t, (_, wcu) in demand.items()}
            dry = {t for t in demand if not buckets[t].solvent()}
            second = int(self._now() - self.began)
            whole = self._callers[caller]
            whole.requests += 1
            whole.throttled += bool(dry)
            for table, (units, _) in demand.items():
                counts = self._counts[table][caller]
                counts.requests += 1
                if dry:
                    counts.throttled += table in dry
                    continue
                buckets[table].take(units)
                counts.units += units
                counts.units_by_second[second] += units
                whole.units += units
                whole.units_by_second[second] += units
            return dry

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "burst_seconds": self.burst_seconds,
                "elapsed": round(self._now() - self.began, 3),
                "callers": {c: n.as_json() for c, n in self._callers.items()},
                "tables": {
                    t: {
                        "write_units": self._buckets[t].rate if t in self._buckets else None,
                        "callers": {c: n.as_json() for c, n in callers.items()},
                    }
                    for t, callers in self._counts.items()
                },
            }


class CountsFile:
    """Writes the model's snapshot to `path` (atomically) while it changes, from its own
    thread: a test or `runbook simulate` reads it from another process."""

    def __init__(
        self,
        model: ProvisionedCapacity,
        path: Path,
        every: float = FLUSH_SECONDS,
        write: Callable[[Path, str], None] | None = None,
    ) -> None:
        self.model, self.path, self.every = model, path, every
        self._write = write or _atomic_text
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capacity-counts", daemon=True)
        self._written = -1

    def start(self) -> None:
        self.flush()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.flush()

    def flush(self) -> None:
        version = self.model.version
        if version != self._written:
            self._write(self.path, json.dumps(self.model.snapshot()))
            self._written = version

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.flush()


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_counts(path: Path) -> dict[str, Any] | None:
    """The world's capacity counts as last written; None when it keeps none (or not yet)."""
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None
