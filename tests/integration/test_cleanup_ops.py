"""Monitoring, Phase 5 deletions and their restores, and the ops gate checks, against moto."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from engine.actions.cleanup.routes import DEPLOYMENT_INTERVAL_SECONDS
from engine.actions.destructive import Refused
from engine.aws.target import DUMMY_CREDENTIALS, Connection
from engine.core.world import REAL_ACCOUNT
from engine.rehearsal import simulator
from engine.rehearsal.seed import LAMBDA_ROLE
from tests.support.actions import (
    SECRET,
    check,
    final_backups,
    go,
    methods_of,
    rollback_params,
    run,
    step_params,
)
from tests.support.worlds import prod_api


def tables(conn: Any) -> set[str]:
    return set(conn.client("dynamodb").list_tables()["TableNames"])


def test_delete_tables_refused_then_deleted_and_restored(world, make_ctx, runbook, tmp_path):
    deprecated = runbook.inventory.select_tables("@deprecated")
    params = step_params(runbook, "delete-deprecated-tables")
    ctx, _ = make_ctx("delete-deprecated-tables", world)
    with pytest.raises(Refused, match="not GO"):
        run(ctx, "delete_tables", params)
    go(ctx.journal)
    with pytest.raises(Refused, match="no final backup"):
        run(ctx, "delete_tables", params)
    assert set(deprecated) <= tables(world)  # nothing deleted

    ddb = world.client("dynamodb")
    protected = deprecated[0]
    ddb.update_table(TableName=protected, DeletionProtectionEnabled=True)
    before = ddb.scan(TableName=protected)["Count"]
    final_backups(world, ctx.journal, deprecated)
    s = run(ctx, "delete_tables", params)
    assert sorted(s["deleted"]) == sorted(deprecated) and s["protection_disabled"] == [protected]
    assert not set(deprecated) & tables(world)
    assert ddb.list_backups()["BackupSummaries"]  # backups kept
    folder = tmp_path / "journal.artifacts" / ctx.cursors["archive_dir"]
    assert (folder / f"{protected}.table.json").exists()
    again = run(ctx, "delete_tables", params)  # idempotent
    assert sorted(again["deleted"]) == sorted(deprecated)

    rctx, _ = make_ctx("rollback-cleanup#0", world, journal=ctx.journal)
    r = run(rctx, "restore_tables", runbook.rollbacks[3].steps[0].params)
    assert sorted(r["restored"]) == sorted(deprecated)
    assert set(deprecated) <= tables(world)
    assert ddb.scan(TableName=protected)["Count"] == before
    assert ddb.describe_table(TableName=protected)["Table"]["DeletionProtectionEnabled"]
    assert run(rctx, "restore_tables", runbook.rollbacks[3].steps[0].params)["restored"]


def test_delete_functions_archives_then_restores(world, make_ctx, runbook, tmp_path):
    deprecated = runbook.inventory.select_functions("@deprecated")
    params = step_params(runbook, "delete-deprecated-functions")
    lam = world.client("lambda")
    fn = deprecated[0]
    env_before = lam.get_function_configuration(FunctionName=fn)["Environment"]["Variables"]
    arn = lam.get_function(FunctionName=fn)["Configuration"]["FunctionArn"]
    lam.add_permission(
        FunctionName=fn,
        StatementId="apigw",
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
    )
    ctx, _ = make_ctx("delete-deprecated-functions", world)
    with pytest.raises(Refused):
        run(ctx, "delete_functions", params)
    assert lam.get_function(FunctionName=fn)
    go(ctx.journal)
    s = run(ctx, "delete_functions", params)
    assert sorted(s["deleted"]) == sorted(deprecated)
    assert s["log_groups_deleted"] == len(deprecated)
    assert sorted(s["code_missing"]) == sorted(deprecated)  # moto's code URL is unreachable
    names = {f["FunctionName"] for f in lam.list_functions()["Functions"]}
    assert not names & set(deprecated)
    logs = world.client("logs")
    groups = {g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]}
    assert f"/aws/lambda/{fn}" not in groups
    folder = tmp_path / "journal.artifacts" / ctx.cursors["archive_dir"]
    archive = json.loads((folder / f"{fn}.json").read_text())
    assert archive["configuration"]["FunctionArn"] == arn
    assert archive["code"]["retrieved"] is False and archive["code"]["reason"]
    assert "API_SIGNING_SECRET" in archive["environment_names"]
    for path in folder.iterdir():  # secrets stay in the account (SSM SecureString)
        assert SECRET not in path.read_text(errors="ignore")
    assert SECRET not in (tmp_path / "journal.toml").read_text()
    assert run(ctx, "delete_functions", params)["deleted"] == s["deleted"]  # idempotent

    rctx, _ = make_ctx("rollback-cleanup#1", world, journal=ctx.journal)
    r = run(rctx, "restore_functions", rollback_params(runbook, "restore_functions"))
    assert sorted(r["restored"]) == sorted(deprecated)
    assert sorted(r["placeholder_code"]) == sorted(deprecated)
    conf = lam.get_function_configuration(FunctionName=fn)
    assert conf["Environment"]["Variables"] == env_before
    assert conf["Role"].endswith(LAMBDA_ROLE)
    assert "apigw" in lam.get_policy(FunctionName=fn)["Policy"]
    groups = {g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]}
    assert f"/aws/lambda/{fn}" in groups


def count_calls(client: Any, operation: str) -> list[str]:
    """The calls of `operation` this client makes from now on (a botocore event hook)."""
    made: list[str] = []
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(
        f"before-call.{service}.{operation}", lambda **_: made.append(operation)
    )
    return made


def call_times(client: Any, operation: str) -> list[float]:
    """When this client makes `operation` from now on (monotonic seconds)."""
    made: list[float] = []
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(
        f"before-call.{service}.{operation}", lambda **_: made.append(time.monotonic())
    )
    return made


def test_delete_and_restore_api_routes(world, make_ctx, runbook, tmp_path):
    gw = world.client("apigateway")
    api_id = prod_api(world)
    before = methods_of(gw, api_id)
    legacy = {
        f"{m} {r.path}" for r in runbook.inventory.api.routes if r.deprecate for m in r.methods
    }
    ctx, _ = make_ctx("delete-legacy-routes", world)
    with pytest.raises(Refused):
        run(ctx, "delete_api_routes", {})
    go(ctx.journal)
    reads = count_calls(ctx.client("apigateway"), "GetResources")
    deployed = call_times(ctx.client("apigateway"), "CreateDeployment")
    s = run(ctx, "delete_api_routes", {})
    # GetResources is limited to 5 per 2 s: read for the archive and once for the routes, not
    # once per route (issue 19, item 6)
    assert len(reads) <= 2 < len(legacy), reads
    assert set(s["deleted_routes"]) == legacy
    after = methods_of(gw, api_id)
    assert not legacy & set(after) and set(after) == set(before) - legacy
    paths = {r["path"] for r in gw.get_resources(restApiId=api_id)["items"]}
    assert "/expenses" not in paths and "/company/expenses" in paths
    archive = json.loads(
        (
            tmp_path / "journal.artifacts" / ctx.cursors["archive_dir"] / ctx.cursors["archive"]
        ).read_text()
    )
    assert archive["export"] and any(r["path"] == "/expenses" for r in archive["resources"])

    rctx, _ = make_ctx("rollback-cleanup#2", world, journal=ctx.journal)
    reads = count_calls(rctx.client("apigateway"), "GetResources")
    r = run(rctx, "restore_api_routes", {"delete_step": "delete-legacy-routes"})
    assert len(reads) == 1, reads
    # CreateDeployment: one per 5 s per account, so the rollback's waited for the cleanup's
    assert len(deployed) == 2, deployed  # the world's one client: both steps' calls
    assert deployed[1] - deployed[0] >= DEPLOYMENT_INTERVAL_SECONDS - 0.1
    assert set(r["restored_routes"]) == legacy
    restored = methods_of(gw, api_id)
    assert set(restored) == set(before)
    key = "GET /expenses"
    assert restored[key]["methodIntegration"]["uri"] == before[key]["methodIntegration"]["uri"]


def test_monitoring_create_check_and_cleanup(world, make_ctx, runbook):
    ctx, _ = make_ctx("monitoring", world)
    r = check(ctx, "monitoring_ready", {"step": "monitoring"})
    assert not r.ok and "not completed" in r.detail
    s = run(ctx, "create_monitoring", step_params(runbook, "monitoring"))
    assert s["alarms"] == 5  # 4 company functions + dual-write failures
    run(ctx, "create_monitoring", step_params(runbook, "monitoring"))  # idempotent
    r = check(ctx, "monitoring_ready", {"step": "monitoring"})
    assert r.ok, r.detail
    cw = world.client("cloudwatch")
    cw.delete_alarms(AlarmNames=[ctx.cursors["alarms"][0]])
    assert not check(ctx, "monitoring_ready", {"step": "monitoring"}).ok

    # an old alarm and a metric filter on a deprecated function
    old = runbook.inventory.select_functions("@deprecated")[0]
    cw.put_metric_alarm(
        AlarmName=f"legacy-{old}-errors",
        Namespace="AWS/Lambda",
        MetricName="Errors",
        Statistic="Sum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
        Dimensions=[{"Name": "FunctionName", "Value": old}],
    )
    logs = world.client("logs")
    logs.put_metric_filter(
        logGroupName=f"/aws/lambda/{old}",
        filterName="errors",
        filterPattern="ERROR",
        metricTransformations=[
            {"metricName": "e", "metricNamespace": "Legacy", "metricValue": "1"}
        ],
    )
    cctx, _ = make_ctx("remove-old-monitoring", world, journal=ctx.journal)
    with pytest.raises(Refused):
        run(cctx, "cleanup_monitoring", step_params(runbook, "remove-old-monitoring"))
    go(ctx.journal)
    s = run(cctx, "cleanup_monitoring", step_params(runbook, "remove-old-monitoring"))
    assert s["deleted_alarms"] == [f"legacy-{old}-errors"] and s["deleted_metric_filters"] == 1
    assert not logs.describe_metric_filters(logGroupName=f"/aws/lambda/{old}")["metricFilters"]
    assert check(ctx, "monitoring_ready", {"step": "monitoring"}).ok is False  # unrelated


def test_metric_checks(world, make_ctx, runbook):
    ctx, _ = make_ctx("gate", world, time_scale=1000.0)
    ctx.world = REAL_ACCOUNT  # exact counts: only the ticks published below
    r = check(ctx, "dual_write_success_rate", {"min_percent": 99.9, "window_minutes": 300})
    assert not r.ok and "no dual-write data points" in r.detail
    r = check(ctx, "error_rate_below", {"max_percent": 1.0, "window_minutes": 60})
    assert not r.ok and "no invocations" in r.detail
    r = check(ctx, "error_count_zero", {"window_minutes": 720})
    assert not r.ok and "cannot be confirmed" in r.detail  # no traffic is no evidence

    fctx, _ = make_ctx("deploy-feature-flags", world, journal=ctx.journal)
    run(fctx, "set_flags", {"values": {"DUAL_WRITE_ENABLED": "true"}})
    simulator.publish_tick(world.client, runbook, 300)
    r = check(ctx, "dual_write_success_rate", {"min_percent": 99.9, "window_minutes": 300})
    assert r.ok and r.data["percent"] == 100.0, r.detail
    r = check(ctx, "error_rate_below", {"max_percent": 1.0, "window_minutes": 60})
    assert r.ok and r.data["invocations"] == 4 * 3000
    assert check(ctx, "error_count_zero", {"window_minutes": 720}).ok

    simulator.set_error_rate(world.client, 2)
    simulator.publish_tick(world.client, runbook, 300)
    r = check(ctx, "dual_write_success_rate", {"min_percent": 99.9, "window_minutes": 300})
    assert not r.ok and r.data["percent"] == pytest.approx(99.0)
    r = check(ctx, "error_rate_below", {"max_percent": 1.0, "window_minutes": 60})
    assert not r.ok and r.data["percent"] == pytest.approx(1.0)  # "below" is strict
    r = check(ctx, "error_count_zero", {"window_minutes": 720})
    assert not r.ok and r.data["errors"] == 4 * 60


def test_embedded_checks_simulate_traffic(world, make_ctx, runbook):
    ctx, _ = make_ctx("gate", world)
    r = check(ctx, "dual_write_success_rate", {"min_percent": 99.9, "window_minutes": 300})
    assert not r.ok and "no dual-write data points" in r.detail  # no flags: no traffic
    fctx, _ = make_ctx("enable-dual-write", world, journal=ctx.journal)
    run(fctx, "set_flags", {"values": {"DUAL_WRITE_ENABLED": "true"}})
    r = check(ctx, "dual_write_success_rate", {"min_percent": 99.9, "window_minutes": 300})
    assert r.ok, r.detail


def test_journal_checks(world, make_ctx, runbook):
    ctx, _ = make_ctx("gate", world, time_scale=100.0)
    r = check(ctx, "elapsed_since_step", {"step": "read-shift-100", "hours": 24})
    assert not r.ok and "not finished" in r.detail
    state = ctx.journal.step("read-shift-100")
    state.status = "done"
    finished = datetime.now(UTC) - timedelta(minutes=10)  # 10 real min x100 = 16.7 plan h
    state.finished_at = finished.strftime("%Y-%m-%dT%H:%M:%SZ")
    r = check(ctx, "elapsed_since_step", {"step": "read-shift-100", "hours": 24})
    assert not r.ok and r.data["elapsed_hours"] == pytest.approx(16.67, abs=0.1)
    # issue 20, item 17: when it will be met on the wall clock (7.3 plan h left = 4.4 min)
    met_at = datetime.strptime(r.data["met_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert (met_at - datetime.now(UTC)).total_seconds() == pytest.approx(264, abs=10)
    assert f"met at {met_at:%H:%M}Z (in 4." in r.detail and " min)" in r.detail
    state.finished_at = (finished - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert check(ctx, "elapsed_since_step", {"step": "read-shift-100", "hours": 24}).ok

    r = check(ctx, "steps_done", {})
    assert not r.ok
    for i, step in enumerate(runbook.steps):
        ctx.journal.step(step.id).status = "skipped" if i % 2 else "done"
    r = check(ctx, "steps_done", {})
    assert r.ok, r.detail


def test_the_dashboard_reads_the_region_the_run_drives(runbook, make_ctx):
    """Issue 19, item 7: run with --region eu-west-1, the runbook saying us-east-1: the
    dashboard's widgets read eu-west-1, where the functions are."""
    assert runbook.runbook.region == "us-east-1"
    with mock_aws():
        conn = Connection(boto3.Session(region_name="eu-west-1", **DUMMY_CREDENTIALS), "eu-west-1")
        ctx, _ = make_ctx("monitoring", conn)
        run(ctx, "create_monitoring", step_params(runbook, "monitoring"))
        body = conn.client("cloudwatch").get_dashboard(DashboardName=runbook.monitoring.dashboard)
    widgets = json.loads(body["DashboardBody"])["widgets"]
    regions = {w["properties"]["region"] for w in widgets if w["type"] == "metric"}
    assert regions == {"eu-west-1"}
