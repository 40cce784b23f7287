"""migrate_entity at a capacity budget (issue 21), against moto: each table's capacity read
from DescribeTable and auto scaling, ConsumedCapacity asked and counted, the write budget held,
the progress line and summary, and the CloudWatch throttle sums that halve the budget."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from engine.actions.migrate.budget import CapacityGovernor
from engine.aws.capacity import consumed_units, minute_sums, read_capacity, throttle_queries
from engine.core.capacity import ON_DEMAND, PROVISIONED
from engine.core.clock import Interrupted
from engine.core.events import LogLine, Progress
from tests.support.actions import run
from tests.support.write_path import EXPENSES, MEMBERS, T_EXPENSES, N, build, mapped

AS_TABLE = "dynamodb:table:WriteCapacityUnits"


def provision(ddb, table: str, wcu: int, rcu: int = 1000) -> None:
    ddb.update_table(
        TableName=table,
        BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": rcu, "WriteCapacityUnits": wcu},
    )


def test_capacity_comes_from_describe_table_and_auto_scaling(aws, make_ctx, runbook):
    ddb, _ = mapped(aws, make_ctx, runbook)
    provision(ddb, T_EXPENSES, 200, 100)
    aas = aws.client("application-autoscaling")
    aas.register_scalable_target(
        ServiceNamespace="dynamodb",
        ResourceId=f"table/{T_EXPENSES}",
        ScalableDimension=AS_TABLE,
        MinCapacity=50,
        MaxCapacity=4000,
    )
    cap = read_capacity(ddb, aas, T_EXPENSES)
    assert cap.mode == PROVISIONED
    assert cap.write.provisioned == 200 and cap.write.scaling == (50, 4000)
    assert cap.read.provisioned == 100 and cap.read.scaling is None
    source = read_capacity(ddb, aas, EXPENSES)
    assert source.mode == ON_DEMAND  # moto reports warm throughput, no maximum (docs/moto.md)
    assert source.read.warm and source.basis("read") is None


def test_consumed_units_read_either_shape_of_the_answer():
    assert consumed_units({"ConsumedCapacity": {"TableName": "t", "CapacityUnits": 2.0}}, "t") == 2
    listed = {"ConsumedCapacity": [{"TableName": "t", "CapacityUnits": 4.0}, {"TableName": "u"}]}
    assert consumed_units(listed, "t") == 4
    assert consumed_units({"ConsumedCapacity": []}, "t") is None  # moto's transactions
    assert consumed_units({}, "t") is None


def test_the_migration_holds_its_write_budget_and_shows_it(aws, make_ctx, runbook):
    ddb, ctx = mapped(aws, make_ctx, runbook)
    provision(ddb, T_EXPENSES, 200)  # a budget of 100 WCU/s: 100 PutItems/s
    ctx, events = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    began = time.monotonic()
    s = run(ctx, "migrate_entity", {"entity": "expenses", "write_path": "put"})
    seconds = time.monotonic() - began
    assert s["migrated"] == N
    assert s["write_budget_wcu"] == 100 and s["capacity_share"] == 0.5
    assert s["consumed_wcu"] == N  # moto says 1 unit per put
    # one second's units may go at once, the rest at the budget's pace
    assert (N - 100) / seconds <= 100 * 1.15, seconds
    assert s["hottest_companies"][0]["company"] == "comp-a"
    assert 0 < s["hottest_companies"][0]["peak_wcu_per_s"] <= 100 * 1.15 + 100
    lines = [e.capacity for e in events if isinstance(e, Progress) and e.capacity]
    assert lines and all("/100 RCU" in line for line in lines), lines[-1]
    said = [e.message for e in events if isinstance(e, LogLine)]
    assert any("provisioned 200 WCU; the migration's writes take at most 100" in m for m in said)


def test_a_throttle_rise_on_the_target_halves_the_budget_and_says_why(aws, make_ctx, runbook):
    ddb, ctx = mapped(aws, make_ctx, runbook)
    provision(ddb, T_EXPENSES, 400)
    ctx, events = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    governor = CapacityGovernor(ctx, EXPENSES, T_EXPENSES)
    governor.start()  # the baseline: no throttles before the step
    try:
        assert governor.budget["write"] == 200
        aws.client("cloudwatch").put_metric_data(
            Namespace="AWS/DynamoDB",
            MetricData=[
                {
                    "MetricName": "WriteThrottleEvents",
                    "Dimensions": [{"Name": "TableName", "Value": T_EXPENSES}],
                    "Value": 7.0,
                    "Timestamp": datetime.now(UTC),
                }
            ],
        )
        reason = governor.poll()
        assert reason is not None and reason.startswith("WriteThrottleEvents")
        assert governor.budget["write"] == 100
        assert "x0.5 (WriteThrottleEvents)" in governor.line()
        said = [e.message for e in events if isinstance(e, LogLine)]
        assert any("the application suffers (WriteThrottleEvents" in m for m in said)
        ctx.throttle.set_capacity_share(0.25)  # `runbook throttle --capacity-share 0.25`
        governor.wait_write(ctx.clock.stop)
        assert governor.budget["write"] == 50  # 400 x 25% x the halving
    finally:
        governor.stop()
        ctx.throttle.set_capacity_share(None)


def test_dual_write_failures_above_the_baseline_are_a_rise_too(aws, make_ctx, runbook):
    _, ctx = mapped(aws, make_ctx, runbook)
    mon = runbook.monitoring
    ctx, _ = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    governor = CapacityGovernor(ctx, EXPENSES, T_EXPENSES)
    governor.start()
    try:
        aws.client("cloudwatch").put_metric_data(
            Namespace=mon.namespace,
            MetricData=[
                {
                    "MetricName": mon.dual_write_failure_metric,
                    "Dimensions": [
                        {"Name": k, "Value": v} for k, v in mon.dual_write_dimensions.items()
                    ],
                    "Value": 3.0,
                    "Timestamp": datetime.now(UTC),
                }
            ],
        )
        assert governor.poll() == f"{mon.dual_write_failure_metric} 3/min > baseline 0"
        assert governor.poll() is None  # the same minute halves once, however often read
        assert governor.aimd.factor == 0.5 + runbook.capacity.recover_step  # a quiet poll
    finally:
        governor.stop()


def test_throttle_sums_are_one_minute_sums_per_table_and_operation(aws):
    queries = throttle_queries(["t"], None)
    labels = [q["Label"] for q in queries]
    assert labels[0] == "WriteThrottleEvents t"
    assert "ThrottledRequests t TransactWriteItems" in labels
    assert all(q["MetricStat"]["Period"] == 60 for q in queries)
    now = datetime.now(UTC)
    aws.client("cloudwatch").put_metric_data(
        Namespace="AWS/DynamoDB",
        MetricData=[
            {
                "MetricName": "ThrottledRequests",
                "Dimensions": [
                    {"Name": "TableName", "Value": "t"},
                    {"Name": "Operation", "Value": "TransactWriteItems"},
                ],
                "Value": 2.0,
                "Timestamp": now,
            }
        ],
    )
    got = minute_sums(aws.client("cloudwatch"), queries, now.replace(second=0), now)
    assert [v for _, v in got["ThrottledRequests t TransactWriteItems"]] == [2.0]
    assert got["WriteThrottleEvents t"] == []


def test_a_large_company_waits_for_its_partition_while_a_small_one_goes(aws, make_ctx, runbook):
    """Hot partitions: each company under `share` of its partition, the writes spread across
    companies: the small company is done long before the large one, whatever the scan order."""
    build(aws, runbook)  # user-a of comp-a: N items
    res = aws.resource("dynamodb")
    res.Table(MEMBERS).put_item(Item={"companyId": "comp-b", "userId": "user-b", "role": "admin"})
    with res.Table(EXPENSES).batch_writer() as w:
        for n in range(20):
            item = {"userId": "user-b", "expenseId": f"b-{n:03d}", "amount": Decimal(n)}
            w.put_item(Item={**item, "date": "2024-01-01"})
    cap = runbook.capacity.model_copy(update={"partition_write_units": 400.0})  # 200 WCU/s
    rb = runbook.model_copy(update={"capacity": cap})
    mctx, _ = make_ctx("mapping-document", aws, rb=rb)
    run(mctx, "company_mapping", {"apply": True})
    ctx, _ = make_ctx("migrate-expenses", aws, journal=mctx.journal, rb=rb)
    order: list[str] = []
    ddb = aws.client("dynamodb")

    def landed(params, **_):
        order.append(params["Item"]["companyId"]["S"])

    ddb.meta.events.register("provide-client-params.dynamodb.PutItem", landed)
    began = time.monotonic()
    s = run(ctx, "migrate_entity", {"entity": "expenses", "write_path": "put", "in_flight": 8})
    seconds = time.monotonic() - began
    assert s["migrated"] == N + 20
    assert order.count("comp-b") == 20
    last_b = max(i for i, c in enumerate(order) if c == "comp-b")
    assert last_b < len(order) / 2, last_b  # spread: not behind the large company's items
    hottest = {h["company"]: h for h in s["hottest_companies"]}
    assert hottest["comp-a"]["peak_wcu_per_s"] <= 2 * 200  # a second's burst and its ceiling
    assert (N - 200) / seconds <= 200 * 1.15, seconds


def test_a_resumed_migration_counts_what_it_consumed_before_the_stop(aws, make_ctx, runbook):
    """The summary's consumed units, halvings and peaks are the whole step's, not the last
    run's: they are checkpointed with the cursors and carried into the resume."""
    ddb, ctx = mapped(aws, make_ctx, runbook)
    provision(ddb, T_EXPENSES, 2000)
    mctx, _ = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    puts = [0]

    def stop_after_150(**_: Any) -> None:  # the operator's stop, mid-step
        puts[0] += 1
        if puts[0] == 150:
            mctx.clock.stop.set()

    ddb.meta.events.register("after-call.dynamodb.PutItem", stop_after_150)
    params = {"entity": "expenses", "write_path": "put", "page_size": 50}
    with pytest.raises(Interrupted):
        run(mctx, "migrate_entity", params)
    carried = mctx.cursors["capacity"]
    assert 0 < carried["consumed_wcu"] < N and carried["peak_wcu"], carried
    ddb.meta.events.unregister("after-call.dynamodb.PutItem", stop_after_150)
    rctx, _ = make_ctx("migrate-expenses", aws, journal=mctx.journal)
    s = run(rctx, "migrate_entity", params)
    assert s["migrated"] + s["skipped_newer"] >= N - carried["consumed_wcu"]
    # every put answered counts once: before the stop, then after it (pages redone included)
    assert s["consumed_wcu"] >= N, s["consumed_wcu"]
    assert s["hottest_companies"][0]["company"] == "comp-a"
