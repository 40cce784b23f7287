"""Issue 8, item 5: metrics as they exist on a real account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine.actions.traffic.watch import TriggerFired
from engine.core.context import RollBackNow
from engine.core.world import REAL_ACCOUNT
from engine.rehearsal.simulator import set_error_rate, set_errors_seen_by
from engine.rehearsal.traffic_shape import TrafficShape, set_traffic_shape
from tests.support.actions import check, run, step_params


def _custom(runbook: Any) -> Any:
    mon = runbook.monitoring.model_copy(
        update={
            "namespace": "ConstructionExpenses/App",
            "dual_write_success_metric": "dualWriteOk",
            "dual_write_failure_metric": "dualWriteFailed",
            "dual_write_dimensions": {"Service": "expenses", "Stage": "prod"},
        }
    )
    return runbook.model_copy(update={"monitoring": mon})


def _publish(conn: Any, ok: float, failed: float, dims: list[dict[str, str]]) -> None:
    now = datetime.now(UTC)
    conn.client("cloudwatch").put_metric_data(
        Namespace="ConstructionExpenses/App",
        MetricData=[
            {"MetricName": name, "Value": value, "Dimensions": dims, "Timestamp": now}
            for name, value in (("dualWriteOk", ok), ("dualWriteFailed", failed))
        ],
    )


def test_dual_write_counts_are_read_as_the_runbook_names_them(world, make_ctx, runbook):
    rb = _custom(runbook)
    ctx, _ = make_ctx("gate", world, rb=rb)
    ctx.world = REAL_ACCOUNT  # the application publishes, not the simulator
    params = {"min_percent": 99.9, "window_minutes": 300}
    r = check(ctx, "dual_write_success_rate", params)
    assert not r.ok and r.detail.startswith("no data") and r.data["no_data"]
    assert "dualWriteOk/dualWriteFailed Service=expenses,Stage=prod" in r.detail
    # the same names without the dimensions are other metrics on CloudWatch
    _publish(world, 5000, 0, [])
    assert check(ctx, "dual_write_success_rate", params).detail.startswith("no data")
    dims = [{"Name": "Service", "Value": "expenses"}, {"Name": "Stage", "Value": "prod"}]
    _publish(world, 9990, 10, dims)
    r = check(ctx, "dual_write_success_rate", params)
    assert not r.ok and r.data["percent"] == 99.9 and r.data["success"] == 9990
    _publish(world, 100000, 0, dims)
    assert check(ctx, "dual_write_success_rate", params).ok

    # the monitoring step's alarm and dashboard watch the same metric
    mctx, _ = make_ctx("monitoring", world, rb=rb)
    run(mctx, "create_monitoring", step_params(rb, "monitoring"))
    alarm = world.client("cloudwatch").describe_alarms(
        AlarmNames=[f"{rb.monitoring.alarm_prefix}dual-write-failures"]
    )["MetricAlarms"][0]
    assert alarm["Namespace"] == "ConstructionExpenses/App"
    assert alarm["MetricName"] == "dualWriteFailed"
    assert sorted(d["Name"] for d in alarm["Dimensions"]) == ["Service", "Stage"]


def test_simulator_publishes_what_the_runbook_reads(world, make_ctx, runbook):
    """The embedded world publishes with the runbook's names and dimensions."""
    assert runbook.monitoring.dual_write_dimensions  # the bundled runbook names them
    ctx, _ = make_ctx("enable-dual-write", world)
    run(ctx, "set_flags", {"values": {"DUAL_WRITE_ENABLED": "true"}})
    r = check(ctx, "dual_write_success_rate", {"min_percent": 99.9, "window_minutes": 300})
    assert r.ok and r.data["success"] > 0, r.detail


def _duration_queries(cw: Any) -> list[tuple[str, int]]:
    seen: list[tuple[str, int]] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        for q in params.get("MetricDataQueries", []):
            stat = q.get("MetricStat", {})
            if stat.get("Metric", {}).get("MetricName") == "Duration":
                seen.append((stat["Stat"], stat["Period"]))

    cw.meta.events.register("provide-client-params.cloudwatch.GetMetricData", hook)
    return seen


def test_latency_baseline_and_watch_use_one_statistic_and_period(world, make_ctx, runbook):
    scale = 20000.0
    ctx, _ = make_ctx("enable-dual-write", world, time_scale=scale)
    run(ctx, "set_flags", {"values": {"DUAL_WRITE_ENABLED": "true"}})
    queries = _duration_queries(world.client("cloudwatch"))
    bctx, _ = make_ctx("capture-baseline", world, journal=ctx.journal, time_scale=scale)
    # a long baseline window alone would get coarser periods than a watch tick's window
    run(bctx, "capture_baseline", {"minutes": 30 * 24 * 60})
    baseline = list(queries)
    wctx, _ = make_ctx("read-shift-10", world, journal=ctx.journal, time_scale=scale)
    s = run(wctx, "shift_reads", {"percent": 10, "watch_minutes": 120, "triggers": ["latency"]})
    watch = queries[len(baseline) :]
    assert baseline and watch
    assert (
        {q for q in baseline}
        == {q for q in watch}
        == {(bctx.cursors["statistic"], bctx.cursors["period_seconds"])}
    )
    assert "latency_increase" in s["worst"] and "no_data" not in s


def test_a_watch_without_datapoints_says_no_data(world, make_ctx, runbook):
    ctx, _ = make_ctx("monitor-dual-write", world, time_scale=20000.0)
    ctx.world = REAL_ACCOUNT  # nobody publishes anything
    s = run(ctx, "watch_window", {"minutes": 120, "triggers": ["error-rate", "latency"]})
    assert s["no_data"] == {"error_rate": s["ticks"], "latency_increase": s["ticks"]}
    assert s["worst"] == {} and "max_error_rate_percent" not in s
    for name, params in (
        ("error_rate_below", {"max_percent": 1.0, "window_minutes": 60}),
        ("error_count_zero", {"window_minutes": 720}),
    ):
        r = check(ctx, name, params)
        assert not r.ok and r.detail.startswith("no data") and r.data["no_data"]


def _lambda_errors(world: Any, functions: list[str]) -> float:
    cw = world.client("cloudwatch")
    now = datetime.now(UTC)
    total = 0.0
    for fn in functions:
        got = cw.get_metric_statistics(
            Namespace="AWS/Lambda", MetricName="Errors",
            Dimensions=[{"Name": "FunctionName", "Value": fn}],
            StartTime=now - timedelta(hours=1), EndTime=now + timedelta(minutes=5),
            Period=60, Statistics=["Sum"],
        )  # fmt: skip
        total += sum(p["Sum"] for p in got["Datapoints"])
    return total


def test_a_500_returned_by_the_handler_fails_the_gate_though_lambda_saw_no_error(
    world, make_ctx, runbook
):
    """Lambda's Errors count only exceptions thrown; the API's 5XX is what clients got."""
    ctx, _ = make_ctx("enable-dual-write", world)
    set_errors_seen_by(ctx.clients, "api")
    set_error_rate(ctx.clients, 5.0)
    run(ctx, "set_flags", {"values": {"DUAL_WRITE_ENABLED": "true"}})  # a tick of traffic
    r = check(ctx, "error_rate_below", {"max_percent": 1.0, "window_minutes": 60})
    assert not r.ok, r.detail
    assert "API Gateway 5XX (construction-expenses-api)" in r.detail and "5.000%" in r.detail
    assert r.data["errors"] == 0  # Lambda's own count stayed flat
    assert _lambda_errors(world, list(runbook.flags.functions)) == 0
    set_error_rate(ctx.clients, 0.0)
    run(ctx, "set_flags", {"values": {"DUAL_WRITE_ENABLED": "true"}})
    assert check(ctx, "error_rate_below", {"max_percent": 10.0, "window_minutes": 60}).ok


QUIET_NIGHT = dict(traffic=0.02, cold_start_factor=3.0)  # 12 requests/min a function


def _shift_on_a_quiet_night(world: Any, make_ctx: Any, rb: Any, seed: int) -> dict:
    """A latency baseline, then a read shift (new flags: cold starts) watched for 10 min on a
    quiet night with the noise of few requests; no real error or slowdown."""
    # a tick is a plan minute, half a real second: CloudWatch (moto) windows start on a whole
    # second, so faster ticks would blur the readings together
    scale = 120.0
    ctx, _ = make_ctx("enable-dual-write", world, rb=rb, time_scale=scale)
    set_traffic_shape(ctx.clients, TrafficShape())
    run(ctx, "set_flags", {"values": {"DUAL_WRITE_ENABLED": "true"}})
    bctx, _ = make_ctx("capture-baseline", world, journal=ctx.journal, rb=rb, time_scale=scale)
    run(bctx, "capture_baseline", {"minutes": 60})
    set_traffic_shape(ctx.clients, TrafficShape(**QUIET_NIGHT, noise_seed=seed))
    wctx, _ = make_ctx("read-shift-10", world, journal=ctx.journal, rb=rb, time_scale=scale)
    params = {"percent": 10 if seed % 2 else 50, "watch_minutes": 10}
    return run(wctx, "shift_reads", {**params, "triggers": ["error-rate", "latency"]})


@pytest.mark.slow
def test_cold_starts_on_a_quiet_night_trip_no_rollback_in_ten_runs(world, make_ctx, runbook):
    # cold starts last 5 plan minutes: 7 minutes of warm-up clear them with two ticks to spare
    # (CloudWatch windows start on a whole second; a tick here is half of one)
    short = runbook.monitoring.model_copy(update={"warmup_minutes": 7})
    rb = runbook.model_copy(update={"monitoring": short})
    for seed in range(10):
        s = _shift_on_a_quiet_night(world, make_ctx, rb, seed)
        assert s["warmup_ticks"] == 7, s  # the first 7 of 10 plan minutes: cold starts, unread
        assert s["worst"]["latency_increase"] < 20.0, (seed, s)


def test_without_the_warm_up_the_same_cold_starts_trip_the_latency_trigger(
    world, make_ctx, runbook
):
    """The control: the guards are what keep the quiet night quiet."""
    bare = runbook.monitoring.model_copy(update={"warmup_minutes": 0, "consecutive_readings": 1})
    rb = runbook.model_copy(update={"monitoring": bare})
    with pytest.raises((TriggerFired, RollBackNow), match="latency"):
        _shift_on_a_quiet_night(world, make_ctx, rb, seed=1)
