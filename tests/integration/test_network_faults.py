"""Answers broken on the way (issue 20, item 1): a 200 whose body is cut short, a connection
closed mid-body, a 200 whose body is not JSON. Each is retried as a dropped connection, never
read as an empty answer: the data steps end with the same target as an unbroken run, and an
answer that stays broken fails the step, naming the call and the table, with nothing marked
done. The faults come from a loopback proxy in front of a real moto server
(tests/support/faulty_proxy.py), so botocore and urllib3 see them as they would on a network."""

from __future__ import annotations

from typing import Any

import pytest

from engine.actions import registry
from engine.aws import dynamo
from engine.aws.dynamo import check_scan_arithmetic
from engine.aws.target import local_connection
from tests.support.faulty_proxy import FaultyProxy, Plan, nth
from tests.support.world import seed_endpoint

LEGACY = "construction-expenses-multi-table-expenses"
TARGET = "construction-expenses-company-expenses"
FAULTS = ("truncate", "close", "not-json")


def run(ctx: Any, name: str, params: dict[str, Any]) -> dict[str, Any]:
    action = registry()[name]
    ctx.state.status = "running"
    summary = action.summary_dict(action.run(ctx, action.params.model_validate(params)), name)
    ctx.state.status, ctx.state.summary = "done", summary
    return summary


@pytest.fixture
def seeded(moto_endpoint: str, runbook: Any) -> str:
    conn = seed_endpoint(moto_endpoint, runbook)
    ddb = conn.client("dynamodb")
    with conn.resource("dynamodb").Table(LEGACY).batch_writer() as w:  # more pages per segment
        for n in range(60):
            user, ident = f"user-0{n % 3}", f"exp-x{n:03d}"
            w.put_item(Item={"userId": user, "expenseId": ident, "amount": n, "date": "2024"})
    assert dynamo.count_items(ddb, LEGACY) >= 60
    return moto_endpoint


def ids(conn: Any, table: str) -> set[str]:
    ddb = conn.client("dynamodb")
    return {i["expenseId"] for page, _ in dynamo.scan_pages(ddb, table) for i in page}


def legacy_ids(conn: Any) -> set[str]:
    return ids(conn, LEGACY)


def mapped(conn: Any, make_ctx: Any) -> Any:
    ctx, _ = make_ctx("mapping-document", conn)
    run(ctx, "company_mapping", {"apply": True})
    return ctx


@pytest.mark.parametrize("fault", FAULTS)
def test_a_broken_scan_page_is_read_again_and_nothing_is_lost(seeded, make_ctx, fault) -> None:
    plan = Plan(fault, nth("Scan", 1, 3, 6))  # the count's answer, then pages of the segments
    with FaultyProxy(seeded, plan) as proxy:
        conn = local_connection(proxy.url, "us-east-1")
        ctx = mapped(conn, make_ctx)
        mctx, _ = make_ctx("migrate-expenses", conn, journal=ctx.journal)
        params = {"entity": "expenses", "segments": 2, "page_size": 7}
        summary = run(mctx, "migrate_entity", params)
    assert plan.broken == ["Scan"] * 3
    assert summary["scanned"] == summary["source_total"] == len(legacy_ids(conn))
    assert legacy_ids(conn) <= ids(conn, TARGET)  # beside what the application wrote there


@pytest.mark.parametrize("fault", FAULTS)
def test_a_broken_table_description_is_read_again(seeded, make_ctx, fault) -> None:
    """DescribeTable without `Table` was a bare KeyError: 'Table' in the next migration."""
    plan = Plan(fault, nth("DescribeTable", 0, 1))
    with FaultyProxy(seeded, plan) as proxy:
        conn = local_connection(proxy.url, "us-east-1")
        ctx = mapped(conn, make_ctx)
        mctx, _ = make_ctx("migrate-projects", conn, journal=ctx.journal)
        summary = run(mctx, "migrate_entity", {"entity": "projects"})
    assert plan.broken == ["DescribeTable", "DescribeTable"]
    assert summary["migrated"] == summary["source_total"] >= 1


@pytest.mark.parametrize("fault", FAULTS)
def test_a_broken_count_is_counted_again(seeded, make_ctx, fault) -> None:
    plan = Plan(fault, nth("Scan", 0))
    with FaultyProxy(seeded, plan) as proxy:
        conn = local_connection(proxy.url, "us-east-1")
        ctx = mapped(conn, make_ctx)
        actx, _ = make_ctx("analyze-data-volume", conn, journal=ctx.journal)
        summary = run(actx, "analyze_legacy", {"entities": ["expenses"]})
    assert summary["items"] == len(legacy_ids(conn)), summary
    assert plan.broken == ["Scan"]


def test_an_answer_that_stays_broken_fails_naming_the_call_and_table(seeded, make_ctx) -> None:
    plan = Plan("truncate", lambda op, n: op == "Scan")
    with FaultyProxy(seeded, plan) as proxy:
        conn = local_connection(proxy.url, "us-east-1")
        ctx, _ = make_ctx("migrate-expenses", conn)
        with pytest.raises(Exception) as failed:
            run(ctx, "migrate_entity", {"entity": "expenses"})
    said = str(failed.value)
    assert "IncompleteResponse" in said and "Scan" in said and f"TableName={LEGACY}" in said
    assert "cut short" in said
    assert ctx.state.status != "done"


def test_scan_arithmetic() -> None:
    assert check_scan_arithmetic("e", 7, 7, lambda: 99) is None
    assert check_scan_arithmetic("e", 7, 9, lambda: 99) is None  # the application added items
    assert check_scan_arithmetic("e", 7, 5, lambda: 5) is None  # ... or deleted two
    said = check_scan_arithmetic("e", 7, 0, lambda: 7)
    assert said == (
        "e: scanned 0 items, but 7 were counted at the start and the table still holds 7: "
        "7 were never read (an answer lost on the way?)"
    )


@pytest.mark.parametrize("fault", FAULTS)
def test_a_broken_function_configuration_never_reads_as_no_variables(
    seeded, make_ctx, runbook, fault
) -> None:
    """A flags merge keeps every other variable it reads; an answer cut short must not read as
    an empty environment (the merge would then wipe them)."""
    # each function's first two reads of its configuration (the proxy counts per path)
    configuration = lambda op, n: op.endswith("/configuration") and n < 2  # noqa: E731
    plan = Plan(fault, configuration)
    # two functions: each broken read costs botocore's backoff, and two show it per function
    fns = runbook.flags.functions[:2]
    with FaultyProxy(seeded, plan) as proxy:
        conn = local_connection(proxy.url, "us-east-1")
        lam = conn.client("lambda")
        before = {fn: lam.get_function_configuration(FunctionName=fn)["Environment"] for fn in fns}
        plan.seen.clear()  # the reads above went through; break the step's own first reads
        plan.broken.clear()
        ctx, _ = make_ctx("deploy-feature-flags", conn)
        params = {**runbook.step("deploy-feature-flags").params, "functions": fns}
        run(ctx, "set_flags", params)
        after = {fn: lam.get_function_configuration(FunctionName=fn)["Environment"] for fn in fns}
    assert len(plan.broken) == 2 * len(fns), plan.broken
    for fn in fns:
        kept = {k: after[fn]["Variables"].get(k) for k in before[fn]["Variables"]}
        assert kept == before[fn]["Variables"], fn  # nothing wiped
        assert after[fn]["Variables"]["DUAL_WRITE_ENABLED"] == "false"


@pytest.mark.parametrize("fault", FAULTS)
def test_a_lost_create_backup_answer_makes_no_second_backup(seeded, make_ctx, fault) -> None:
    """CreateBackup has no client token: sent again after its answer was lost, it would make a
    second backup. The step looks for the first by its name instead."""
    plan = Plan(fault, nth("CreateBackup", 0))
    with FaultyProxy(seeded, plan) as proxy:
        conn = local_connection(proxy.url, "us-east-1")
        ctx, _ = make_ctx("backup-tables", conn)
        params = {"tables": [LEGACY], "name_prefix": "pre-migration"}
        summary = run(ctx, "backup_tables", params)
    assert plan.broken == ["CreateBackup"]
    backups = conn.client("dynamodb").list_backups(TableName=LEGACY)["BackupSummaries"]
    assert len(backups) == 1 and summary["backups"] == 1
    assert ctx.state.cursors["backups"][LEGACY]["arn"] == backups[0]["BackupArn"]


@pytest.mark.parametrize("fault", FAULTS)
def test_a_broken_xml_answer_is_asked_again(seeded, fault) -> None:
    """Query (STS) and rest-xml (S3) answers: botocore raised ResponseParserError on XML cut
    short, or a KeyError on a proxy's HTML page, and nothing retried them."""
    plan = Plan(fault, lambda op, n: n == 0 and (op == "GetCallerIdentity" or "list-type" in op))
    with FaultyProxy(seeded, plan) as proxy:
        conn = local_connection(proxy.url, "us-east-1")
        s3 = conn.client("s3")
        s3.create_bucket(Bucket="state")
        for n in range(5):
            s3.put_object(Bucket="state", Key=f"run/{n}.toml", Body=b"x")
        assert conn.client("sts").get_caller_identity()["Account"] == "123456789012"
        listed = s3.list_objects_v2(Bucket="state", Prefix="run/")
    assert plan.broken == ["GetCallerIdentity", plan.broken[1]] and len(plan.broken) == 2
    assert listed["KeyCount"] == 5
