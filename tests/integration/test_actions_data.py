"""Data actions against moto (mock_aws), through the actions: mapping, analysis, migration with
resume, validation, rollbacks, inventory. The dataset has several thousand legacy items with
orphans, collisions, malformed items, newer target items and a user in two companies."""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal
from typing import Any

import pytest

from engine.actions.analyze.mapping import MappingConflict
from engine.aws import dynamo
from engine.checks import registry as checks
from engine.core.clock import Interrupted
from engine.core.events import Progress
from engine.rehearsal.seed import create_table
from tests.support.actions import run
from tests.support.legacy_data import (
    EXPENSES,
    N_EXPENSES,
    NEWER,
    PROJECTS,
    T_EXPENSES,
    T_PROJECTS,
    build,
    company_of,
    target_items,
)
from tests.support.world import MIGRATION_TS


def step(make_ctx: Any, conn: Any, step_id: str, journal: Any = None) -> Any:
    ctx, events = make_ctx(step_id, conn, journal=journal)
    return ctx, events


def check(ctx: Any, name: str, params: dict[str, Any]) -> Any:
    c = checks()[name]
    return c.evaluate(ctx, c.params.model_validate(params))


def test_mapping_conflict_then_override(aws, make_ctx, runbook):
    build(aws, runbook, dual=True)
    ctx, _ = make_ctx("mapping-document", aws)
    with pytest.raises(MappingConflict) as info:
        run(ctx, "company_mapping", {"apply": False})
    msg = str(info.value)
    assert "user-dual is in comp-a, comp-b" in msg and str(ctx.overrides_path()) in msg
    conflicts = ctx.artifact("mapping-conflicts.jsonl").read_text()
    assert json.loads(conflicts) == {"user": "user-dual", "companies": ["comp-a", "comp-b"]}

    ctx.overrides_path().write_text('[users]\n"user-dual" = "comp-b"\n')
    s = run(ctx, "company_mapping", {"apply": True})
    assert s["overrides"] == 1 and s["conflicts"] == 0 and s["orphans"] == 2
    assert s["companies_created"] == 2 and s["overrides_file"] == str(ctx.overrides_path())
    rows = [json.loads(line) for line in ctx.artifact("mapping.jsonl").read_text().splitlines()]
    by_user = {r["user"]: r for r in rows}
    assert by_user["user-dual"] == {"user": "user-dual", "company": "comp-b", "reason": "override"}
    assert by_user["user-orphan-1"]["reason"] == "orphan-new-company"
    assert by_user["user-orphan-1"]["company"] == company_of("user-orphan-1")
    assert by_user["user-05"] == {"user": "user-05", "company": "comp-c", "reason": "member"}
    # the migration honours the override too
    mctx, _ = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    run(mctx, "migrate_entity", {"entity": "expenses"})
    got = aws.client("dynamodb").get_item(
        TableName=T_EXPENSES, Key=dynamo.to_dynamo({"companyId": "comp-b", "expenseId": "dual-1"})
    )
    assert dynamo.to_python(got["Item"])["createdBy"] == "user-dual"
    # rollback of the orphan companies removes exactly what the run created
    rctx, _ = make_ctx("rollback-data#1", aws, journal=ctx.journal)
    r = run(rctx, "remove_orphan_companies", {})
    assert r["companies_removed"] == 2 and r["memberships_removed"] == 2


def test_analyze_migrate_resume_validate_rollback(aws, make_ctx, runbook):
    expected = build(aws, runbook)
    ctx, _ = make_ctx("mapping-document", aws)
    journal = ctx.journal
    run(ctx, "company_mapping", {"apply": True})

    actx, _ = make_ctx("analyze-data-volume", aws, journal=journal)
    a = run(actx, "analyze_legacy", {"entities": ["expenses", "projects"]})
    assert a["items"] == expected["source"] + 100
    assert a["malformed"] == 4 and a["collisions"] == 3 and a["collision_keys"] == 2
    assert a["orphans"] == 2 and a["newer_in_target"] == NEWER
    collisions = [
        json.loads(x) for x in actx.artifact("collisions.jsonl").read_text().split("\n") if x
    ]
    assert {(c["id"], c["reason"]) for c in collisions} == {
        ("dup-1", "legacy-duplicate-key"),
        ("own-1", "target-owned-by-other"),
    }
    assert next(c for c in collisions if c["id"] == "dup-1")["users"] == ["user-00", "user-03"]
    quarantine = actx.artifact("quarantine.jsonl").read_text().splitlines()
    assert len(quarantine) == 4 and "missing required amount" in quarantine[0] + "".join(quarantine)
    gate = check(actx, "analysis_clean", {"step": "analyze-data-volume"})
    assert not gate.ok and "collisions.jsonl" in gate.detail

    # migrate, stopped after 3 applied pages, then resumed with a fresh context
    mctx, events = make_ctx("migrate-expenses", aws, journal=journal)
    pages = []

    def emit(event: Any) -> None:
        events.append(event)
        if isinstance(event, Progress) and event.table == EXPENSES and event.done:
            pages.append(event.done)
            if len(pages) == 3:
                mctx.clock.stop.set()

    mctx.emit = emit
    params = {"entity": "expenses", "segments": 3, "page_size": 500}
    with pytest.raises(Interrupted):
        run(mctx, "migrate_entity", params)
    saved = journal.step("migrate-expenses").cursors
    assert saved["source_total"] == expected["source"]
    assert 0 < saved["counts"]["scanned"] < expected["source"]
    segs = saved["segments"].values()
    assert any("key" in seg or seg["done"] for seg in segs)
    assert not all(seg["done"] for seg in segs)
    on_disk = (actx.artifacts_dir.parent / "journal.toml").read_text()
    assert "source_total" in on_disk  # checkpointed on the way out
    rctx, revents = make_ctx("migrate-expenses", aws, journal=journal)
    m = run(rctx, "migrate_entity", params)
    assert m["source_total"] == m["scanned"] == expected["source"]
    assert m["migrated"] == expected["migrated"]
    assert m["skipped_newer"] == NEWER
    assert m["collisions"] == 3 and m["quarantined"] == 4
    assert [p for p in revents if isinstance(p, Progress)][-1].done == expected["source"]
    items = target_items(aws, T_EXPENSES)
    keys = [(i["companyId"], i["expenseId"]) for i in items]
    assert len(keys) == len(set(keys)) == N_EXPENSES + 1  # + own-1 of the application
    by_id = {i["expenseId"]: i for i in items}
    assert by_id["exp-00100"]["amount"] == Decimal(100 % 997) + Decimal("0.25")  # older: replaced
    assert by_id["exp-00100"]["updatedAt"] == MIGRATION_TS and "userId" not in by_id["exp-00100"]
    assert by_id["exp-00007"]["createdAt"] == "2024-01-02T03:04:05Z"
    assert by_id["exp-00008"]["createdAt"] == MIGRATION_TS
    assert by_id["exp-00001"]["amount"] == 999  # newer application write kept
    assert by_id["own-1"]["createdBy"] == "user-01" and "dup-1" not in by_id
    q = rctx.artifact("quarantine-expenses.jsonl").read_text().splitlines()
    assert len(q) == 4 and all(json.loads(x)["reason"] for x in q)
    rows = [
        json.loads(x) for x in rctx.artifact("collisions-expenses.jsonl").read_text().splitlines()
    ]
    owned = next(r for r in rows if r["id"] == "own-1")  # why, whose, and the item itself
    assert owned["reason"] == "analysis: target-owned-by-other"
    assert owned["existing_created_by"] == "user-01" and owned["item"]["expenseId"] == "own-1"
    dup = [r for r in rows if r["id"] == "dup-1"]
    assert len(dup) == 2 and {r["reason"] for r in dup} == {"analysis: legacy-duplicate-key"}

    pctx, _ = make_ctx("migrate-projects", aws, journal=journal)
    scans: list[tuple[str, int]] = []  # (thread, segment) of every Scan call sent

    def note_scan(params: dict[str, Any], **_: Any) -> None:
        if "Segment" in params:  # the parallel scan of the source (not a plain count)
            scans.append((threading.current_thread().name, params["Segment"]))

    ddb = pctx.client("dynamodb")
    ddb.meta.events.register("provide-client-params.dynamodb.Scan", note_scan, "note-scan")
    try:
        migrated = run(pctx, "migrate_entity", {"entity": "projects", "segments": 2})
    finally:
        ddb.meta.events.unregister("provide-client-params.dynamodb.Scan", unique_id="note-scan")
    assert migrated["migrated"] == 100
    # the two parallel-scan segments were read, each in a thread of its own
    assert {seg for _, seg in scans} == {0, 1}
    assert all(len({t for t, s in scans if s == seg}) == 1 for seg in (0, 1))
    assert len({t for t, _ in scans}) == 2

    # validation: nothing missing, but unresolved collisions/quarantine are not ok
    vctx, _ = make_ctx("validate-migration", aws, journal=journal)
    v = run(vctx, "validate_migration", {"entities": ["expenses", "projects"]})
    assert v["records_missing"] == 0
    perf = v["performance"]  # the plan's validationResults shape, no traffic here
    assert {"avgResponseTime", "p99ResponseTime", "errorRate"} <= set(perf)
    assert perf["p99Statistic"] == "Average" and perf["invocations"] == 0
    assert v["recordCounts"]["expenses"] == {
        "source": expected["source"],
        "target": N_EXPENSES,
        "not_migrated": 7,
        "match": True,
    }
    assert v["recordCounts"]["projects"]["match"] and v["recordCounts"]["projects"]["target"] == 100
    assert v["dataIntegrity"] == dict.fromkeys(v["dataIntegrity"], True)
    assert v["issues"]["collisions"] == 3 and v["issues"]["quarantined"] == 4
    assert v["issues"]["skipped_newer"] == NEWER
    assert v["ok"] is False
    assert not check(vctx, "validation_passed", {"step": "validate-migration"}).ok

    # corrupt one migrated item, plant a cross-tenant copy, delete one: all caught
    ddb = aws.client("dynamodb")
    victim = by_id["exp-00200"]
    ddb.put_item(TableName=T_EXPENSES, Item=dynamo.to_dynamo({**victim, "amount": Decimal(1)}))
    leak = {**by_id["exp-00300"], "companyId": "comp-zzz"}
    ddb.put_item(TableName=T_EXPENSES, Item=dynamo.to_dynamo(leak))
    gone = by_id["exp-00400"]
    ddb.delete_item(
        TableName=T_EXPENSES,
        Key=dynamo.to_dynamo({"companyId": gone["companyId"], "expenseId": "exp-00400"}),
    )
    v2ctx, _ = make_ctx("final-validation", aws, journal=journal)
    v2 = run(v2ctx, "validate_migration", {"entities": ["expenses"]})
    assert v2["issues"]["checksum_mismatch"] == 1 and v2["issues"]["sum_mismatches"] == 1
    assert v2["issues"]["cross_tenant"] == 1 and v2["issues"]["duplicates"] == 1
    assert v2["records_missing"] == 1 and not v2["recordCounts"]["expenses"]["match"]
    assert not v2["dataIntegrity"]["checksum"] and not v2["dataIntegrity"]["crossTenant"]
    problems = v2ctx.artifact(v2["artifact"]).read_text()
    assert "comp-zzz" in problems and "exp-00400" in problems and "exp-00200" in problems

    # rollback-data: only what the run wrote goes; application items stay
    rb_ctx, _ = make_ctx("rollback-data#0", aws, journal=journal)
    r = run(rb_ctx, "remove_migrated_items", {"entities": ["expenses", "projects"]})
    left = target_items(aws, T_EXPENSES)
    assert sorted(i["expenseId"] for i in left) == [f"exp-{n:05d}" for n in range(NEWER)] + [
        "own-1"
    ]
    assert all(i["updatedAt"] != MIGRATION_TS for i in left)
    assert r["entities"]["projects"] == 100 and target_items(aws, T_PROJECTS) == []
    assert r["removed"] == 100 + N_EXPENSES - NEWER  # one deleted above, one planted copy


def test_resync_legacy_restores_legacy_items(aws, make_ctx, runbook):
    build(aws, runbook)
    ctx, _ = make_ctx("create-orphan-companies", aws)
    run(ctx, "company_mapping", {"apply": True})
    pctx, _ = make_ctx("migrate-projects", aws, journal=ctx.journal)
    run(pctx, "migrate_entity", {"entity": "projects"})
    before = sorted(target_items(aws, PROJECTS), key=lambda i: i["projectId"])
    ddb = aws.client("dynamodb")
    ddb.delete_table(TableName=PROJECTS)
    create_table(ddb, runbook.find_table(PROJECTS))
    sctx, _ = make_ctx("rollback-cleanup#3", aws, journal=ctx.journal)
    s = run(sctx, "resync_legacy", {"entities": ["projects"]})
    assert s["resynced"] == 100 and s["skipped"] == 0
    assert sorted(target_items(aws, PROJECTS), key=lambda i: i["projectId"]) == before


def test_inventory_diff(world, make_ctx, runbook):
    ctx, events = make_ctx("inventory", world)
    s = run(ctx, "inventory_diff", {})
    assert s["missing"] == s["unexpected"] == s["count_differences"] == 0
    assert s["tables_live"] == len(runbook.inventory.tables)
    assert any(isinstance(e, Progress) and e.table == EXPENSES for e in events)
    dep = next(f.name for f in runbook.inventory.functions if f.deprecate)
    world.client("lambda").delete_function(FunctionName=dep)
    ddb = world.client("dynamodb")
    ddb.put_item(TableName=EXPENSES, Item=dynamo.to_dynamo({"userId": "u", "expenseId": "e"}))
    s = run(ctx, "inventory_diff", {})
    detail = json.loads(ctx.artifact("inventory-inventory.json").read_text())
    assert detail["missing"] == [f"function {dep}"] and s["count_differences"] == 1
    assert detail["tables"][EXPENSES]["live"] == 8
    after, _ = make_ctx("post-migration-audit", world, journal=ctx.journal)
    s = run(after, "inventory_diff", {"expect_removed": True})
    assert s["missing"] == 0 and s["still_present"] > 0


def test_migrate_stop_lands_within_one_write_batch(aws, make_ctx, runbook):
    """A stop mid-page (one 1 MB page holds the whole table here) abandons the page between
    write batches, well inside the 2 s the operator is promised; the resume completes it."""
    expected = build(aws, runbook)
    ctx, _ = make_ctx("create-orphan-companies", aws)
    run(ctx, "company_mapping", {"apply": True})
    mctx, _ = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    stopped_at: list[float] = []

    def stop_soon() -> None:
        stopped_at.append(time.monotonic())
        mctx.clock.stop.set()

    timer = threading.Timer(1.0, stop_soon)
    timer.start()
    with pytest.raises(Interrupted):
        run(mctx, "migrate_entity", {"entity": "expenses"})
    latency = time.monotonic() - stopped_at[0]
    assert latency < 2.0, latency
    cursors = ctx.journal.step("migrate-expenses").cursors
    assert cursors["counts"]["scanned"] == 0  # the abandoned page was not counted
    written = len(target_items(aws, T_EXPENSES))
    assert 0 < written < N_EXPENSES  # part of the page was applied before the stop
    rctx, _ = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    m = run(rctx, "migrate_entity", {"entity": "expenses"})
    assert m["scanned"] == m["source_total"] == expected["source"]
    assert m["skipped_newer"] == NEWER  # items rewritten on resume are not counted as newer
