"""Validation and the consistency sampler read in parallel (issue 12): the legacy table by
parallel-scan segments, the company-scoped twins by BatchGetItem of at most 100 keys, never one
GetItem per item. Observed on moto with a botocore hook (an observer only: the calls go on)."""

from __future__ import annotations

import random
import threading
from collections import Counter, defaultdict
from typing import Any

from tests.support.actions import run
from tests.support.write_path import EXPENSES, T_EXPENSES, N, mapped


class Reads:
    """Every DynamoDB request the client sends: operation counts, BatchGetItem's key counts and
    read consistency, and the parallel-scan segments asked of each table."""

    def __init__(self, client: Any) -> None:
        self.lock = threading.Lock()
        self.ops: Counter[str] = Counter()
        self.batch_keys: list[int] = []
        self.consistent: list[bool] = []
        self.segments: dict[str, set[int | None]] = defaultdict(set)
        client.meta.events.register("provide-client-params.dynamodb", self.note)

    def note(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        with self.lock:
            self.ops[model.name] += 1
            if model.name == "BatchGetItem":
                for request in params["RequestItems"].values():
                    self.batch_keys.append(len(request["Keys"]))
                    self.consistent.append(bool(request.get("ConsistentRead")))
            elif model.name == "Scan":
                self.segments[params["TableName"]].add(params.get("Segment"))


def test_validation_reads_by_segments_and_batches_of_100(aws, make_ctx, runbook):
    ddb, ctx = mapped(aws, make_ctx, runbook)
    mctx, _ = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    assert run(mctx, "migrate_entity", {"entity": "expenses"})["migrated"] == N
    reads = Reads(ddb)
    vctx, _ = make_ctx("validate-migration", aws, journal=ctx.journal)
    v = run(vctx, "validate_migration", {"entities": ["expenses"], "segments": 4})
    assert v["records_missing"] == 0
    assert v["recordCounts"]["expenses"] == {
        "source": N,
        "target": N,
        "not_migrated": 0,
        "match": True,
    }
    assert reads.ops["GetItem"] == 0 and reads.ops["Query"] == 0  # no item-at-a-time loop
    assert reads.segments[EXPENSES] == {0, 1, 2, 3}  # every segment of the legacy table
    assert max(reads.batch_keys) <= 100 and sum(reads.batch_keys) >= N  # each twin is read
    assert len(reads.batch_keys) <= N // 50  # batched: 100 keys a call where a page has them


def test_the_consistency_sample_reads_its_twins_in_consistent_batches(
    aws, make_ctx, runbook
) -> None:
    from engine.actions.traffic.sample import sample_consistency

    ddb, ctx = mapped(aws, make_ctx, runbook)
    mctx, _ = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    assert run(mctx, "migrate_entity", {"entity": "expenses"})["migrated"] == N
    reads = Reads(ddb)
    sctx, _ = make_ctx("monitor-dual-write", aws, journal=ctx.journal)
    counts = sample_consistency(sctx, random.Random(3))
    assert counts["compared"] >= min(N, runbook.monitoring.sample_size) // 2, counts
    assert counts["mismatched"] == 0, counts
    assert reads.ops["GetItem"] == 0 and reads.ops["Query"] == 0
    assert reads.batch_keys and max(reads.batch_keys) <= 100
    assert len(reads.batch_keys) <= counts["compared"] // 10  # batched, not a call per twin
    assert all(reads.consistent)  # a twin written a moment ago is seen
    assert reads.segments[T_EXPENSES] == set()  # the targets are read by key, never scanned


def test_the_sample_reaches_the_whole_table_not_the_head_of_a_segment(
    aws, make_ctx, runbook
) -> None:
    """One user's 400 items share one partition key, so one scan segment: a sample from scan
    heads reads the same first items every time. Half of each sample is drawn from the key
    index instead: twins broken at the far end of the table are found on every seed."""
    from engine.actions.traffic.sample import sample_consistency

    ddb, ctx = mapped(aws, make_ctx, runbook)
    actx, _ = make_ctx("analyze-data-volume", aws, journal=ctx.journal)
    run(actx, "analyze_legacy", {"entities": ["expenses"]})
    mctx, _ = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    assert run(mctx, "migrate_entity", {"entity": "expenses"})["migrated"] == N
    twins = ddb.scan(TableName=T_EXPENSES)["Items"]
    far_end = sorted(twins, key=lambda t: t["expenseId"]["S"])[-N // 4 :]
    for twin in far_end:  # the last quarter, in the scan's own order, no longer matches
        ddb.put_item(TableName=T_EXPENSES, Item=dict(twin, amount={"N": "-1"}))
    sctx, _ = make_ctx("monitor-dual-write", aws, journal=ctx.journal)
    for seed in range(10):
        counts = sample_consistency(sctx, random.Random(seed))
        assert counts["mismatched"] >= 1, (seed, counts)
        assert counts["sampled"] == runbook.monitoring.sample_size
