"""Checkpoint cost of a journal kept in S3 against one kept on this machine, per 10,000 items
migrated, at 20 ms added to every request (a botocore `before-send` handler, the same on both
sides: DynamoDB and S3).

One migrate_entity step (the runbook's own parameters) on N legacy expenses runs twice on the
same moto server (its own process): once over the local TOML journal (the baseline), once over
`--journal s3://...` in a versioned bucket of that server. Every `store.save` is timed; the
figures are the checkpoints per 10,000 items, the seconds spent checkpointing per 10,000 items
and the step's items/s, as ratios measured in the same run.

Run alone: `.venv/bin/python -m bench.state [--items N]`; `python -m bench --only state`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.latency import add_latency
from bench.world import MotoServer, prepared_journal, reset_target, run_action, runbook, seed
from engine.runbook.model import Runbook
from engine.state.journal import Journal, JournalStore
from engine.state.s3_journal import S3JournalStore
from engine.state.s3_location import parse_s3_url
from engine.state.s3_objects import StateObjects

DELAY = 0.020
BUCKET = "bench-state"


@dataclass
class Timed:
    """A store's save, counted and timed."""

    store: JournalStore
    saves: int = 0
    seconds: float = 0.0

    @property
    def artifacts_dir(self) -> Path:
        return self.store.artifacts_dir

    def save(self, journal: Journal) -> None:
        t0 = time.perf_counter()
        self.store.save(journal)
        self.seconds += time.perf_counter() - t0
        self.saves += 1


def _s3_latency(client: Any, seconds: float) -> None:
    client.meta.events.register_first("before-send.s3", lambda **_: time.sleep(seconds))


def migrate(
    server: MotoServer, rb: Runbook, work: Path, store_for: Callable[[Path], JournalStore]
) -> tuple[Timed, int, float]:
    """(timed store, items migrated, seconds) of one migrate step over `store_for(work)`."""
    reset_target(server.connection(), rb)
    conn = server.connection()
    add_latency(conn.client("dynamodb"), DELAY)
    _, journal = prepared_journal(rb, conn, work)
    timed = Timed(store_for(work))
    params = rb.step("migrate-expenses").params
    t0 = time.perf_counter()
    store: Any = timed  # a JournalStore to the action: artifacts_dir and save
    summary = run_action(rb, conn, store, journal, "migrate-expenses", "migrate_entity", params)
    return timed, int(summary["migrated"]), time.perf_counter() - t0


def s3_store(server: MotoServer, name: str) -> Callable[[Path], JournalStore]:
    s3 = server.connection().client("s3")
    _s3_latency(s3, DELAY)
    location = parse_s3_url(f"s3://{BUCKET}/runs/{name}.toml")
    return lambda work: S3JournalStore(
        location, StateObjects(s3, BUCKET), location.cache_path(work / "home")
    )


def measure(n: int, runs: int, work: Path) -> list[tuple[str, float, float, str]]:
    """(figure, S3, local, unit) rows."""
    rb = runbook()
    server = MotoServer()
    try:
        seed(server.connection(), rb, n)
        s3 = server.connection().client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        local: list[tuple[Timed, int, float]] = []
        remote: list[tuple[Timed, int, float]] = []
        for run in range(runs):  # interleaved: the machine's noise falls on both sides
            local.append(
                migrate(server, rb, work / f"local-{run}", lambda w: JournalStore(w / "j.toml"))
            )
            remote.append(migrate(server, rb, work / f"s3-{run}", s3_store(server, f"r{run}")))
    finally:
        server.stop()

    def med(rows: list[tuple[Timed, int, float]], pick: Callable[..., float]) -> float:
        values = sorted(pick(*row) for row in rows)
        return values[len(values) // 2]

    per = 10_000
    return [
        ("checkpoints per 10,000 items", med(remote, lambda t, k, s: t.saves * per / k),
         med(local, lambda t, k, s: t.saves * per / k), "{:,.0f}"),
        ("checkpoint seconds per 10,000 items", med(remote, lambda t, k, s: t.seconds * per / k),
         med(local, lambda t, k, s: t.seconds * per / k), "{:,.2f}"),
        ("ms per checkpoint", med(remote, lambda t, k, s: 1000 * t.seconds / t.saves),
         med(local, lambda t, k, s: 1000 * t.seconds / t.saves), "{:,.1f}"),
        ("migrate items/s", med(remote, lambda t, k, s: k / s),
         med(local, lambda t, k, s: k / s), "{:,.0f}"),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.state", description=__doc__)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"N = {args.items:,}, {DELAY * 1000:.0f} ms per request, medians of {args.runs}")
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(args.items, args.runs, Path(tmp))
    for figure, s3, local, fmt in rows:
        ratio = s3 / local if local else float("inf")
        print(f"{figure}: S3 {fmt.format(s3)}, local {fmt.format(local)}, {ratio:.2f}x")


if __name__ == "__main__":
    main()
