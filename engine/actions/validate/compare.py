"""validate_migration's comparison of source and target (the action: validate.py).

Streams each legacy table page by page and batch-gets the target item of every page's items
(memory is one page plus one sum per company). Per legacy item: migrated (found, same creator),
newer in the target (application write after the run began: counted as present, content not
compared), quarantined (malformed), collision (analysis index or another creator owns the key)
or missing. For found items: content checksum (transforms.content_checksum), date and createdAt
preserved, required fields/types on the target item, relations present in the same company.
Per company: the sum of `sum_attr` equal. Then the run's own target items (updatedAt = the
migration timestamp) are scanned for cross-tenant placement (company differs from what the
creator maps to) and duplicates (one legacy id+creator under several keys), via a sqlite file.

Problems: one a line of the artifact `validation-<step>.jsonl`, {"entity","kind","key","detail"}.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.actions.analyze.legacy import (
    KeyIndex,
    key_text,
    source_keys,
    target_keys,
    target_shape,
)
from engine.actions.analyze.mapping import Resolver
from engine.actions.migrate.ledger import Ledger, ledger_name
from engine.aws import dynamo
from engine.aws.target_fit import TargetShape, why_unfit
from engine.core.context import ActionContext
from engine.runbook.model import EntitySpec
from engine.runbook.transforms import (
    CREATED_AT,
    CREATED_BY,
    UPDATED_AT,
    checksum_exclusions,
    classify_legacy,
    classify_target,
    content_checksum,
    is_newer,
    to_company_scoped,
)

ISSUE_KEYS = (
    "missing",
    "checksum_mismatch",
    "relationship_errors",
    "required_field_errors",
    "sum_mismatches",
    "date_mismatches",
    "cross_tenant",
    "duplicates",
    "collisions",
    "quarantined",
    "unmapped",
    "skipped_newer",
)


class Problems:
    """The problems file and counts; segments add from their threads."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh
        self.counts = dict.fromkeys(ISSUE_KEYS, 0)
        self.lock = threading.Lock()

    def add(self, entity: str, kind: str, key: Any, detail: str = "") -> None:
        row = {"entity": entity, "kind": kind, "key": key, "detail": detail}
        line = json.dumps(row, sort_keys=True, default=str) + "\n"
        with self.lock:
            self.counts[kind] += 1
            self.fh.write(line)


def _num(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except Exception:
        return Decimal(0)


def _check_relations(
    ctx: ActionContext,
    e: EntitySpec,
    found: list[dict[str, Any]],
    problems: Problems,
) -> None:
    """Every relation attribute of the page's target items points at an item of the same
    company (batch_get per related entity, keys deduplicated)."""
    ddb = ctx.client("dynamodb")
    for attr, rel_name in e.relations.items():
        rel = ctx.runbook.find_entity(rel_name)
        if rel is None:
            continue
        rpk, rsk = target_keys(ctx.runbook, rel)
        wanted = {
            (str(t[e.company_attr]), str(t[attr]))
            for t in found
            if isinstance(t.get(attr), str) and t.get(attr)
        }
        if not wanted:
            continue
        got = dynamo.batch_get(
            ddb,
            rel.target,
            [{rpk: c, rsk: i} for c, i in sorted(wanted)],
            clock=ctx.clock,
            projection="#p, #s",
            names={"#p": rpk, "#s": rsk},
        )
        present = {(str(g[rpk]), str(g[rsk])) for g in got}
        for t in found:
            ref = t.get(attr)
            if isinstance(ref, str) and ref and (str(t[e.company_attr]), ref) not in present:
                problems.add(
                    e.name,
                    "relationship_errors",
                    {e.company_attr: t[e.company_attr], e.id_attr: t[e.id_attr]},
                    f"{attr}={ref} has no {rel_name} item in company {t[e.company_attr]}",
                )


def validate_source(
    ctx: ActionContext,
    e: EntitySpec,
    resolver: Resolver,
    index: KeyIndex | None,
    problems: Problems,
    segments: int = 1,
) -> dict[str, Any]:
    ddb = ctx.client("dynamodb")
    counts = {"source": 0, "target": 0, "not_migrated": 0}
    sums: dict[str, list[Decimal]] = {}
    if not dynamo.table_exists(ddb, e.source):
        ctx.log(f"{e.source} does not exist: nothing to compare for {e.name}", "warning")
        return {**counts, "match": False}
    shape = target_shape(ddb, e.target)
    ledger_path = ctx.artifacts_dir / ledger_name(e.name)
    ledger = Ledger(ledger_path, fresh=False) if ledger_path.exists() else None
    try:
        v = _SourceCheck(ctx, e, resolver, index, problems, shape, ledger, counts, sums)
        _compare_pages(v, segments)
    finally:
        if ledger is not None:
            ledger.close()
    for company, (legacy_sum, target_sum) in sorted(sums.items()):
        if legacy_sum != target_sum:
            problems.add(
                e.name,
                "sum_mismatches",
                {e.company_attr: company},
                f"{e.sum_attr}: legacy {legacy_sum}, target {target_sum}",
            )
    counts["match"] = counts["source"] == counts["target"] + counts["not_migrated"]
    return counts


@dataclass
class _SourceCheck:
    """What the segments of one entity's comparison share; `lock` guards the counts, sums,
    sqlite files and problems; the reads run outside it."""

    ctx: ActionContext
    e: EntitySpec
    resolver: Resolver
    index: KeyIndex | None
    problems: Problems
    shape: TargetShape | None
    ledger: Ledger | None
    counts: dict[str, Any]
    sums: dict[str, list[Decimal]]
    lock: threading.Lock = field(default_factory=threading.Lock)


def _compare_pages(v: _SourceCheck, segments: int) -> None:
    """Parallel-scan segments in threads, each page's targets read by BatchGetItem."""
    if segments == 1:
        _compare_segment(v, 0, 1)
        return
    with ThreadPoolExecutor(segments, thread_name_prefix=f"validate-{v.e.name}") as pool:
        futures = [pool.submit(_compare_segment, v, s, segments) for s in range(segments)]
        for future in as_completed(futures):
            future.result()


def _compare_segment(v: _SourceCheck, segment: int, segments: int) -> None:
    ctx, e = v.ctx, v.e
    ddb = ctx.client("dynamodb")
    pk, sk = target_keys(ctx.runbook, e)
    for page, _ in dynamo.scan_pages(
        ddb, e.source, segment=segment, total_segments=segments, clock=ctx.clock
    ):
        ctx.clock.check()
        with v.lock:
            expected = _expected(v, page)
        got = dynamo.batch_get(ddb, e.target, [{pk: c, sk: i} for c, i in expected], ctx.clock)
        targets = {(str(t[pk]), str(t[sk])): t for t in got}
        with v.lock:
            found = _compare(v, expected, targets)
        _check_relations(ctx, e, found, v.problems)
        with v.lock:
            ctx.progress(e.source, v.counts["source"], None)


def _expected(v: _SourceCheck, page: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The page's items that should have a target twin, by target key; the rest counted."""
    ctx, e, problems, counts = v.ctx, v.e, v.problems, v.counts
    resolver, index, shape = v.resolver, v.index, v.shape
    skeys = source_keys(ctx.runbook, e)
    expected: dict[tuple[str, str], dict[str, Any]] = {}
    for item in page:
        counts["source"] += 1
        skey = json.loads(key_text(item, skeys))
        reason = classify_legacy(e, item)
        if reason is not None:
            problems.add(e.name, "quarantined", skey, reason)
            counts["not_migrated"] += 1
            continue
        user = item[e.user_attr]
        company = resolver.company_for(user)
        if company is None:
            problems.add(e.name, "unmapped", skey, "user in several companies")
            counts["not_migrated"] += 1
            continue
        if index is not None and index.is_collision(e.name, company, item[e.id_attr]):
            problems.add(e.name, "collisions", skey, "colliding target key (analysis)")
            counts["not_migrated"] += 1
            continue
        unfit = None
        if shape is not None:
            unfit = why_unfit(shape, to_company_scoped(e, item, company, ctx.migration_ts))
        if unfit is not None:
            problems.add(e.name, "quarantined", skey, unfit)
            counts["not_migrated"] += 1
            continue
        expected[(company, item[e.id_attr])] = item
    return expected


def _compare(
    v: _SourceCheck,
    expected: dict[tuple[str, str], dict[str, Any]],
    targets: dict[tuple[str, str], dict[str, Any]],
) -> list[dict[str, Any]]:
    ctx, e, problems, counts, sums, ledger = v.ctx, v.e, v.problems, v.counts, v.sums, v.ledger
    exclude = checksum_exclusions(e)
    skeys = source_keys(ctx.runbook, e)
    found: list[dict[str, Any]] = []
    for (company, ident), item in expected.items():
        skey = json.loads(key_text(item, skeys))
        user = item[e.user_attr]
        t = targets.get((company, ident))
        if t is None:
            reason = ledger.quarantine_reason(key_text(item, skeys)) if ledger else None
            if reason is not None:  # set aside by the migration (the target rejected it)
                problems.add(e.name, "quarantined", skey, reason)
                counts["not_migrated"] += 1
                continue
            problems.add(e.name, "missing", skey, f"no {e.target} item {company}/{ident}")
            continue
        if t.get(CREATED_BY) != user:
            problems.add(e.name, "collisions", skey, f"target created by {t.get(CREATED_BY)!r}")
            counts["not_migrated"] += 1
            continue
        counts["target"] += 1
        found.append(t)
        reason = classify_target(e, t)
        if reason is not None:
            problems.add(e.name, "required_field_errors", skey, reason)
        if is_newer(t.get(UPDATED_AT), ctx.migration_ts):
            problems.add(e.name, "skipped_newer", skey, "application write after the run")
            continue
        if content_checksum(item, exclude) != content_checksum(t, exclude):
            problems.add(e.name, "checksum_mismatch", skey, "content differs")
        if e.date_attr and item.get(e.date_attr) != t.get(e.date_attr):
            problems.add(e.name, "date_mismatches", skey, f"{e.date_attr} changed")
        elif CREATED_AT in item and item[CREATED_AT] != t.get(CREATED_AT):
            problems.add(e.name, "date_mismatches", skey, "createdAt changed")
        if e.sum_attr:
            s = sums.setdefault(company, [Decimal(0), Decimal(0)])
            s[0] += _num(item.get(e.sum_attr))
            s[1] += _num(t.get(e.sum_attr))
    return found


def validate_target(
    ctx: ActionContext, e: EntitySpec, resolver: Resolver, problems: Problems, db: Any
) -> None:
    """The run's items in the target: each in the company its creator maps to; no duplicates."""
    ddb = ctx.client("dynamodb")
    pk, sk = target_keys(ctx.runbook, e)
    if not dynamo.table_exists(ddb, e.target):
        return
    db.execute("DELETE FROM seen")
    for page, _ in dynamo.scan_pages(
        ddb,
        e.target,
        clock=ctx.clock,
        FilterExpression="#u = :ts AND attribute_exists(#c)",
        ProjectionExpression="#p, #s, #u, #c",
        ExpressionAttributeNames={"#u": UPDATED_AT, "#c": CREATED_BY, "#p": pk, "#s": sk},
        ExpressionAttributeValues={":ts": dynamo.av(ctx.migration_ts)},
    ):
        ctx.clock.check()
        for t in page:
            user = str(t.get(CREATED_BY))
            expected = resolver.company_for(user)
            if expected is not None and expected != t.get(pk):
                problems.add(
                    e.name,
                    "cross_tenant",
                    {pk: t.get(pk), sk: t.get(sk)},
                    f"created by {user}, who maps to {expected}",
                )
            db.execute("INSERT INTO seen VALUES (?, ?)", (str(t.get(sk)), user))
    for ident, user, n in db.execute(
        "SELECT id, user, COUNT(*) FROM seen GROUP BY id, user HAVING COUNT(*) > 1"
    ):
        for _ in range(n - 1):
            problems.add(e.name, "duplicates", {sk: ident, CREATED_BY: user}, f"{n} copies")
