"""Issue 8, item 3: the waits AWS needs, in the rollback path too (restores of Phase 5)."""

from __future__ import annotations

import json
from typing import Any

from tests.support.actions import final_backups, go, rollback_params, run
from tests.support.aws_inject import fail_first, rewrite_answer

TABLE = "construction-expenses-multi-table-expenses"


def _delete(world: Any, make_ctx: Any, runbook: Any, tables: list[str]) -> Any:
    ctx, _ = make_ctx("delete-deprecated-tables", world)
    go(ctx.journal)
    final_backups(world, ctx.journal, tables)
    run(ctx, "delete_tables", {"tables": tables, "backup_step": "final-backups"})
    return ctx


def test_restore_waits_active_retries_pitr_and_reapplies_tags_ttl_stream(world, make_ctx, runbook):
    ddb = world.client("dynamodb")
    arn = ddb.describe_table(TableName=TABLE)["Table"]["TableArn"]
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "owner", "Value": "platform"}])
    ddb.update_time_to_live(
        TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"}
    )
    # the world's legacy table has a stream (issue 19.9), as an account's would
    assert ddb.describe_table(TableName=TABLE)["Table"]["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    ddb.update_continuous_backups(
        TableName=TABLE, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    ctx = _delete(world, make_ctx, runbook, [TABLE])
    archive = json.loads(
        ctx.artifact(f"{ctx.cursors['archive_dir']}/{TABLE}.table.json").read_text()
    )
    # the archive keeps every tag as found, CloudFormation's aws: tags included (issue 19.2)
    assert {"Key": "owner", "Value": "platform"} in archive["tags"]
    assert any(t["Key"].startswith("aws:cloudformation:") for t in archive["tags"])
    assert archive["stream"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"

    # AWS: the restored table is CREATING for a while, and PITR is refused at first
    calls: list[str] = []
    for op in ("RestoreTableFromBackup", "UpdateContinuousBackups", "TagResource"):
        ddb.meta.events.register(f"before-call.dynamodb.{op}", lambda op=op, **_: calls.append(op))

    def creating(parsed: dict[str, Any], n: int) -> None:
        if "RestoreTableFromBackup" in calls and len(calls) == 1 and n < 50:
            parsed["Table"]["TableStatus"] = "CREATING"
            calls.append(f"CREATING#{n}")

    rewrite_answer(ddb, "DescribeTable", creating)
    refused = fail_first(ddb, "UpdateContinuousBackups", "ContinuousBackupsUnavailableException", 2)
    rctx, _ = make_ctx("rollback-cleanup#0", world, journal=ctx.journal)
    rctx.clock.sleep_real = lambda s: None  # the retries are what count, not the wall time
    params = {"backup_step": "final-backups", "delete_step": "delete-deprecated-tables"}
    assert run(rctx, "restore_tables", params)["restored"] == [TABLE]

    waits = [c for c in calls if c.startswith("CREATING")]
    assert waits, "the restore never waited for ACTIVE"
    first_setting = min(calls.index("TagResource"), calls.index("UpdateContinuousBackups"))
    assert calls.index(waits[-1]) < first_setting  # nothing was applied while CREATING
    assert len(refused) == 3  # two refusals, then accepted
    desc = ddb.describe_table(TableName=TABLE)["Table"]
    assert desc["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    # users cannot assign aws: tags: the restore gives back the user's, less those
    restored_tags = ddb.list_tags_of_resource(ResourceArn=desc["TableArn"])["Tags"]
    assert restored_tags == [t for t in archive["tags"] if not t["Key"].startswith("aws:")]
    assert {t["Key"] for t in restored_tags} == {"team", "owner"}
    ttl = ddb.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED" and ttl["AttributeName"] == "expiresAt"
    pitr = ddb.describe_continuous_backups(TableName=TABLE)["ContinuousBackupsDescription"]
    assert pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"

    # a re-run after a crash before the journal said "restored" applies nothing twice
    rctx.cursors["restored"] = []
    assert run(rctx, "restore_tables", params)["restored"] == [TABLE]


def test_recreated_function_is_active_before_permissions_and_conflicts_retried(
    world, make_ctx, runbook
):
    lam = world.client("lambda")
    fn = runbook.inventory.select_functions("@deprecated")[0]
    lam.add_permission(
        FunctionName=fn,
        StatementId="apigw",
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
    )
    lam.put_function_concurrency(FunctionName=fn, ReservedConcurrentExecutions=3)
    ctx, _ = make_ctx("delete-deprecated-functions", world)
    go(ctx.journal)
    run(ctx, "delete_functions", {"functions": [fn]})

    order: list[str] = []
    for op in ("CreateFunction", "AddPermission", "PutFunctionConcurrency"):
        lam.meta.events.register(f"before-call.lambda.{op}", lambda op=op, **_: order.append(op))

    def pending(parsed: dict[str, Any], n: int) -> None:
        if n < 3:  # AWS: Pending right after CreateFunction
            parsed["State"] = "Pending"
            order.append("Pending")

    rewrite_answer(lam, "GetFunctionConfiguration", pending)
    # the first AddPermission meets an update in progress: retried, not taken as "exists"
    conflicts = fail_first(lam, "AddPermission", "ResourceConflictException", 1, 409)
    rctx, _ = make_ctx("rollback-cleanup#1", world, journal=ctx.journal)
    rctx.clock.sleep_real = lambda s: None
    r = run(rctx, "restore_functions", rollback_params(runbook, "restore_functions"))
    assert r["restored"] == [fn]
    assert order[0] == "CreateFunction" and order[1:4] == ["Pending"] * 3
    assert order.index("AddPermission") > 3 and len(conflicts) == 2
    assert "apigw" in lam.get_policy(FunctionName=fn)["Policy"]
    assert lam.get_function(FunctionName=fn)["Concurrency"]["ReservedConcurrentExecutions"] == 3
