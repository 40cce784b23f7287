"""Issue 21: the rehearsal's provisioned capacity (engine/rehearsal/provisioned.py), on a clock
the test steps: a table's bucket refills at its WCU up to one second of burst, a request is
admitted while the bucket is not in debt and takes all its units (it may overdraw), a request
over two tables fails on the one in debt, and the counts say
per table and caller what was consumed and throttled."""

from __future__ import annotations

import json
from pathlib import Path

from engine.core.buckets import CapacityBucket
from engine.core.capacity import write_units
from engine.rehearsal.provisioned import CountsFile, ProvisionedCapacity, read_counts


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_a_bucket_keeps_one_second_and_takes_all_or_nothing() -> None:
    clock = Clock()
    bucket = CapacityBucket(10, clock)
    assert bucket.has(10) and not bucket.has(10.5)
    bucket.take(8)
    assert not bucket.has(3)
    clock.t += 0.2  # two units back
    assert bucket.has(3.9) and not bucket.has(4.1)
    clock.t += 60  # an idle minute is not kept: one second's worth at most
    assert bucket.has(10) and not bucket.has(11)
    bucket.set_rate(4)  # UpdateTable down: the burst follows
    assert not bucket.has(5)
    bucket.take(6)  # overdrawn: not solvent until the debt is paid back
    assert not bucket.solvent()
    clock.t += 0.6
    assert bucket.solvent()


def test_units_are_dynamodbs() -> None:
    assert write_units(100, "put") == 1
    assert write_units(1025, "put") == 2
    assert write_units(1024, "transact") == 2
    assert write_units(0, "put") == 1  # a delete of nothing still costs one


def test_the_model_throttles_at_the_tables_rate_and_counts_per_caller() -> None:
    clock = Clock()
    model = ProvisionedCapacity(now=clock)
    admitted = [not model.admit("app", {"t": (1.0, 5.0)}) for _ in range(7)]
    assert admitted == [True] * 5 + [False] * 2
    clock.t += 1.0  # a second later the table holds 5 again
    assert model.admit("migration", {"t": (5.0, 5.0)}) == set()
    assert model.admit("migration", {"t": (1.0, 5.0)}) == {"t"}
    counts = model.snapshot()
    app = counts["tables"]["t"]["callers"]["app"]
    assert (app["requests"], app["throttled"], app["units"]) == (7, 2, 5.0)
    assert app["units_by_second"] == {"0": 5.0}
    migration = counts["callers"]["migration"]
    assert (migration["requests"], migration["throttled"]) == (2, 1)
    assert migration["units_by_second"] == {"1": 5.0}
    assert counts["tables"]["t"]["write_units"] == 5.0


def test_a_large_request_overdraws_and_the_next_ones_wait() -> None:
    """A 50-WCU transaction on a 20-WCU table passes, then even a 1-WCU write is throttled
    until the debt is paid back (1.5 s): the application feels a migration that overdraws."""
    clock = Clock()
    model = ProvisionedCapacity(now=clock)
    assert model.admit("migration", {"t": (50.0, 20.0)}) == set()
    assert model.admit("app", {"t": (1.0, 20.0)}) == {"t"}
    clock.t += 1.4
    assert model.admit("app", {"t": (1.0, 20.0)}) == {"t"}
    clock.t += 0.2
    assert model.admit("app", {"t": (1.0, 20.0)}) == set()


def test_a_request_over_two_tables_takes_nothing_when_one_is_dry() -> None:
    clock = Clock()
    model = ProvisionedCapacity(now=clock)
    assert model.admit("app", {"a": (4.0, 4.0)}) == set()  # a is now dry
    assert model.admit("m", {"a": (2.0, 4.0), "b": (2.0, 10.0)}) == {"a"}
    assert model.admit("m", {"b": (10.0, 10.0)}) == set()  # b lost nothing to the refusal
    table_a = model.snapshot()["tables"]["a"]["callers"]["m"]
    assert (table_a["requests"], table_a["throttled"]) == (1, 1)


def test_the_counts_file_follows_the_model(tmp_path: Path) -> None:
    model = ProvisionedCapacity()
    path = tmp_path / "world.capacity.json"
    written: list[str] = []

    def write(p: Path, text: str) -> None:
        written.append(text)
        p.write_text(text)

    counts = CountsFile(model, path, write=write)
    counts.flush()
    counts.flush()  # nothing changed: not written again
    model.admit("app", {"t": (1.0, 10.0)})
    counts.flush()
    assert len(written) == 2
    seen = read_counts(path)
    assert seen is not None and seen["callers"]["app"]["requests"] == 1
    assert json.loads(written[0])["callers"] == {}
    assert read_counts(tmp_path / "none.json") is None
