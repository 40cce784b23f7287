"""What a table can serve and what the application suffers: DescribeTable's billing mode and
throughput, application-autoscaling's bounds, the consumed capacity DynamoDB returns, and the
target tables' throttle metrics in CloudWatch (one-minute sums).

Contracts (botocore's service models): `BillingModeSummary` is absent on a table that was
always provisioned; `OnDemandThroughput.Max*RequestUnits` is -1 (or absent) when no maximum is
set; `WarmThroughput` is what an on-demand table serves at once. `ConsumedCapacity` is one
structure for PutItem, GetItem and Scan, and a list (one per table) for TransactWriteItems and
BatchGetItem. `ThrottledRequests` carries the `Operation` dimension as well as `TableName`, so
it is asked per write operation. moto returns no auto scaling bounds unless registered, no
`AWS/DynamoDB` metrics, and ConsumedCapacity only for some calls (docs/moto.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from engine.aws.metrics import MAX_QUERIES, dual_write_metric
from engine.core.capacity import ON_DEMAND, PROVISIONED, TableCapacity, Units
from engine.runbook.model import MonitoringSpec

DYNAMODB_NAMESPACE = "AWS/DynamoDB"
THROTTLED_OPERATIONS = (
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
)
DIMENSIONS = {
    "read": "dynamodb:table:ReadCapacityUnits",
    "write": "dynamodb:table:WriteCapacityUnits",
}


def _units(value: Any) -> float | None:
    """A throughput figure; None where DynamoDB says there is none (absent, 0 or -1)."""
    if value is None:
        return None
    number = float(value)
    return number if number > 0 else None


def scaling_bounds(aas: Any, table: str) -> dict[str, tuple[float, float]]:
    """Auto scaling (min, max) of the table's read and write units, where registered."""
    try:
        resp = aas.describe_scalable_targets(
            ServiceNamespace="dynamodb", ResourceIds=[f"table/{table}"]
        )
    except ClientError:
        return {}  # not granted, or not offered here: the table's own figures stand
    out: dict[str, tuple[float, float]] = {}
    for target in resp.get("ScalableTargets", []):
        for kind, dimension in DIMENSIONS.items():
            if target.get("ScalableDimension") == dimension:
                out[kind] = (float(target["MinCapacity"]), float(target["MaxCapacity"]))
    return out


def read_capacity(ddb: Any, aas: Any, table: str) -> TableCapacity:
    """The table's billing mode and capacity now."""
    desc = ddb.describe_table(TableName=table)["Table"]
    mode = (desc.get("BillingModeSummary") or {}).get("BillingMode") or PROVISIONED
    provisioned = desc.get("ProvisionedThroughput") or {}
    on_demand = desc.get("OnDemandThroughput") or {}
    warm = desc.get("WarmThroughput") or {}
    bounds = scaling_bounds(aas, table) if mode == PROVISIONED else {}

    def units(kind: str, prov: str, maximum: str, warm_key: str) -> Units:
        if mode == PROVISIONED:
            return Units(provisioned=_units(provisioned.get(prov)), scaling=bounds.get(kind))
        return Units(maximum=_units(on_demand.get(maximum)), warm=_units(warm.get(warm_key)))

    return TableCapacity(
        table,
        ON_DEMAND if mode == ON_DEMAND else PROVISIONED,
        read=units("read", "ReadCapacityUnits", "MaxReadRequestUnits", "ReadUnitsPerSecond"),
        write=units("write", "WriteCapacityUnits", "MaxWriteRequestUnits", "WriteUnitsPerSecond"),
    )


def consumed_units(response: Any, table: str) -> float | None:
    """Capacity units a response says were consumed on `table` (None: it said nothing)."""
    consumed = response.get("ConsumedCapacity") if isinstance(response, dict) else None
    if consumed is None:
        return None
    entries = consumed if isinstance(consumed, list) else [consumed]
    found = [float(e.get("CapacityUnits", 0.0)) for e in entries if e.get("TableName") == table]
    return sum(found) if found else None


def throttle_queries(tables: list[str], mon: MonitoringSpec | None) -> list[dict[str, Any]]:
    """One-minute sums of each target table's write throttles, and the application's
    dual-write failures (when `mon` is given)."""

    def query(qid: str, name: str, dims: dict[str, str], namespace: str) -> dict[str, Any]:
        metric = {
            "Namespace": namespace,
            "MetricName": name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
        }
        return {
            "Id": qid,
            "Label": f"{name} {' '.join(dims.values())}".strip(),
            "MetricStat": {"Metric": metric, "Period": 60, "Stat": "Sum"},
            "ReturnData": True,
        }

    out = []
    for n, table in enumerate(tables):
        out.append(query(f"w{n}", "WriteThrottleEvents", {"TableName": table}, DYNAMODB_NAMESPACE))
        for m, op in enumerate(THROTTLED_OPERATIONS):
            dims = {"TableName": table, "Operation": op}
            out.append(query(f"t{n}_{m}", "ThrottledRequests", dims, DYNAMODB_NAMESPACE))
    if mon is not None:
        failure = dual_write_metric(mon, mon.dual_write_failure_metric)
        out.append(
            {
                "Id": "dwf",
                "Label": mon.dual_write_failure_metric,
                "MetricStat": {"Metric": failure, "Period": 60, "Stat": "Sum"},
                "ReturnData": True,
            }
        )
    return out


Minutes = dict[str, list[tuple[datetime, float]]]


def minute_sums(cw: Any, queries: list[dict[str, Any]], start: datetime, end: datetime) -> Minutes:
    """Label -> (minute, sum) of the whole minutes from start's to end's (CloudWatch leaves
    out minutes without data). The window is aligned to minutes, as CloudWatch aligns
    one-minute periods, and never empty."""
    start = start.replace(second=0, microsecond=0)
    end = max(
        end.replace(second=0, microsecond=0) + timedelta(minutes=1), start + timedelta(minutes=1)
    )
    labels = {q["Id"]: q["Label"] for q in queries}
    out: Minutes = {q["Label"]: [] for q in queries}
    for i in range(0, len(queries), MAX_QUERIES):
        kwargs: dict[str, Any] = {
            "MetricDataQueries": queries[i : i + MAX_QUERIES],
            "StartTime": start,
            "EndTime": end,
        }
        while True:
            page = cw.get_metric_data(**kwargs)
            for res in page.get("MetricDataResults", []):
                pairs = zip(res.get("Timestamps", []), res.get("Values", []), strict=False)
                out[labels[res["Id"]]].extend((at, float(v)) for at, v in pairs)
            token = page.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token
    return out
