"""The migration dashboard and alarms, and removal of old alarms and metric filters.

create_monitoring cursors: `dashboard = "<name>"`, `alarms = ["<alarm name>", ...]`.
cleanup_monitoring cursors: `deleted_alarms = [...]`, `deleted_metric_filters = ["<log group>
<filter name>", ...]`, `functions_done = [...]`; definitions archived to
`monitoring-<step>.json` beside the journal before deletion.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engine.actions.destructive import require_go
from engine.actions.traffic.flags import resolve_functions
from engine.aws.metrics import LAMBDA_NAMESPACE
from engine.core.context import Action, ActionContext, PlannedCall
from engine.runbook.model import Runbook
from engine.state.journal import Journal
from engine.state.records import Cursors, Summary
from engine.state.resume import cursors_of


def alarm_name(rb: Runbook, fn: str) -> str:
    return f"{rb.monitoring.alarm_prefix}{fn}-error-rate"


def dual_write_alarm_name(rb: Runbook) -> str:
    return f"{rb.monitoring.alarm_prefix}dual-write-failures"


def _fn_stat(qid: str, metric: str, fn: str, period: int) -> dict[str, Any]:
    return {
        "Id": qid,
        "ReturnData": False,
        "MetricStat": {
            "Metric": {
                "Namespace": LAMBDA_NAMESPACE,
                "MetricName": metric,
                "Dimensions": [{"Name": "FunctionName", "Value": fn}],
            },
            "Period": period,
            "Stat": "Sum",
        },
    }


def _dual_write_row(rb: Runbook, name: str) -> list[Any]:
    row: list[Any] = [rb.monitoring.namespace, name]
    for key, value in sorted(rb.monitoring.dual_write_dimensions.items()):
        row += [key, value]
    return row


def dashboard_body(
    rb: Runbook, functions: list[str], threshold: float, region: str
) -> dict[str, Any]:
    """The dashboard's widgets read `region`: the one the run drives (--region), which may
    differ from the runbook's default."""
    period = rb.monitoring.period_seconds
    widgets: list[dict[str, Any]] = []

    def widget(title: str, metrics: list[list[Any]], y: int, x: int = 0, stat: str = "Sum") -> None:
        widgets.append(
            {
                "type": "metric",
                "x": x,
                "y": y,
                "width": 12,
                "height": 6,
                "properties": {
                    "title": title,
                    "region": region,
                    "period": period,
                    "stat": stat,
                    "view": "timeSeries",
                    "metrics": metrics,
                },
            }
        )

    widget("Errors", [[LAMBDA_NAMESPACE, "Errors", "FunctionName", fn] for fn in functions], 0)
    widget(
        "Invocations",
        [[LAMBDA_NAMESPACE, "Invocations", "FunctionName", fn] for fn in functions],
        0,
        12,
    )
    widget(
        f"Duration ({rb.monitoring.latency_statistic_aws})",
        [[LAMBDA_NAMESPACE, "Duration", "FunctionName", fn] for fn in functions],
        6,
        stat=rb.monitoring.latency_statistic_aws,
    )
    widget(
        "Dual-write",
        [
            _dual_write_row(rb, rb.monitoring.dual_write_success_metric),
            _dual_write_row(rb, rb.monitoring.dual_write_failure_metric),
        ],
        6,
        12,
    )
    widgets.append(
        {
            "type": "text",
            "x": 0,
            "y": 12,
            "width": 24,
            "height": 2,
            "properties": {
                "markdown": f"Rollback triggers: error rate > {threshold:g}% per function; "
                + "; ".join(t.text for t in rb.triggers)
            },
        }
    )
    return {"widgets": widgets}


# --- create_monitoring ------------------------------------------------------------------------


class CreateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    functions: list[str]
    error_rate_percent: float = Field(default=1.0, gt=0)


class CreateCursors(Cursors):
    dashboard: str | None = None
    alarms: list[str] = []  # alarm names this step created


class CreateSummary(Summary):
    dashboard: str = ""
    alarms: int = 0
    error_rate_percent: float = 0.0


def monitoring_of(journal: Journal, step_id: str) -> CreateCursors | None:
    """The dashboard and alarms a create_monitoring step made (None if it never ran)."""
    return cursors_of(journal, step_id, CreateCursors)


def run_create(ctx: ActionContext, p: CreateParams) -> CreateSummary:
    rb = ctx.runbook
    cw = ctx.client("cloudwatch")
    functions = resolve_functions(rb, p.functions)
    period = rb.monitoring.period_seconds
    body = dashboard_body(rb, functions, p.error_rate_percent, cw.meta.region_name)
    cw.put_dashboard(DashboardName=rb.monitoring.dashboard, DashboardBody=json.dumps(body))
    c = ctx.cursors_as(CreateCursors)
    c.dashboard = rb.monitoring.dashboard
    alarms = c.alarms
    for index, fn in enumerate(functions):
        ctx.clock.check()
        name = alarm_name(rb, fn)
        cw.put_metric_alarm(
            AlarmName=name,
            AlarmDescription=f"{fn}: error rate above {p.error_rate_percent:g}% (runbook "
            f"{rb.runbook.id})",
            Metrics=[
                _fn_stat("e", "Errors", fn, period),
                _fn_stat("i", "Invocations", fn, period),
                {
                    "Id": "rate",
                    "Expression": "100 * e / i",
                    "Label": "error rate %",
                    "ReturnData": True,
                },
            ],
            EvaluationPeriods=1,
            Threshold=p.error_rate_percent,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
        )
        if name not in alarms:
            alarms.append(name)
        ctx.progress("alarms", index + 1, len(functions))
        ctx.checkpoint()
    dw = dual_write_alarm_name(rb)
    cw.put_metric_alarm(
        AlarmName=dw,
        AlarmDescription="dual-write failures",
        Namespace=rb.monitoring.namespace,
        MetricName=rb.monitoring.dual_write_failure_metric,
        Dimensions=[
            {"Name": k, "Value": v} for k, v in sorted(rb.monitoring.dual_write_dimensions.items())
        ],
        Statistic="Sum",
        Period=period,
        EvaluationPeriods=1,
        Threshold=0.0,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
    )
    if dw not in alarms:
        alarms.append(dw)
    ctx.checkpoint(force=True)
    return CreateSummary(
        dashboard=rb.monitoring.dashboard,
        alarms=len(alarms),
        error_rate_percent=p.error_rate_percent,
    )


def plan_create(rb: Runbook, p: CreateParams) -> list[PlannedCall]:
    calls = [PlannedCall("cloudwatch", "PutDashboard", rb.monitoring.dashboard)]
    calls += [
        PlannedCall(
            "cloudwatch",
            "PutMetricAlarm",
            alarm_name(rb, fn),
            f"error rate > {p.error_rate_percent:g}%",
        )
        for fn in resolve_functions(rb, p.functions)
    ]
    return [*calls, PlannedCall("cloudwatch", "PutMetricAlarm", dual_write_alarm_name(rb))]


# --- cleanup_monitoring -----------------------------------------------------------------------


class CleanupParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    functions: list[str]


def _alarm_functions(alarm: dict[str, Any]) -> set[str]:
    dims = list(alarm.get("Dimensions", []))
    for q in alarm.get("Metrics", []) or []:
        dims += q.get("MetricStat", {}).get("Metric", {}).get("Dimensions", [])
    return {d["Value"] for d in dims if d.get("Name") == "FunctionName"}


def alarms_for(cw: Any, functions: set[str]) -> list[dict[str, Any]]:
    """Metric alarms on any of `functions` (by FunctionName dimension)."""
    out = []
    for page in cw.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"]):
        out += [a for a in page.get("MetricAlarms", []) if _alarm_functions(a) & functions]
    return out


class CleanupCursors(Cursors):
    archive: str | None = None  # file name of the archive beside the journal
    deleted_alarms: list[str] = []
    deleted_metric_filters: list[str] = []  # "<log group> <filter name>"


class CleanupSummary(Summary):
    deleted_alarms: list[str] = []
    deleted_metric_filters: int = 0
    functions: int = 0


def run_cleanup(ctx: ActionContext, p: CleanupParams) -> CleanupSummary:

    require_go(ctx)
    rb = ctx.runbook
    cw = ctx.client("cloudwatch")
    logs = ctx.client("logs")
    functions = resolve_functions(rb, p.functions)
    c = ctx.cursors_as(CleanupCursors)
    deleted_alarms, deleted_filters = c.deleted_alarms, c.deleted_metric_filters
    archive_path = ctx.artifact(f"monitoring-{ctx.step_id}.json")
    archive: dict[str, Any] = (
        json.loads(archive_path.read_text())
        if archive_path.exists()
        else {"alarms": {}, "metric_filters": {}}
    )
    alarms = alarms_for(cw, set(functions))
    for alarm in alarms:
        archive["alarms"][alarm["AlarmName"]] = alarm
    filters: list[dict[str, Any]] = []
    for fn in functions:
        group = rb.inventory.log_group_prefix + fn
        try:
            for page in logs.get_paginator("describe_metric_filters").paginate(logGroupName=group):
                filters += page.get("metricFilters", [])
        except logs.exceptions.ResourceNotFoundException:
            continue  # the log group is gone, and its filters with it
    for f in filters:
        archive["metric_filters"][f"{f['logGroupName']} {f['filterName']}"] = f
    archive_path.write_text(json.dumps(archive, indent=2, default=str))
    c.archive = archive_path.name
    names = [a["AlarmName"] for a in alarms]
    for i in range(0, len(names), 100):
        ctx.clock.check()
        cw.delete_alarms(AlarmNames=names[i : i + 100])
        deleted_alarms.extend(n for n in names[i : i + 100] if n not in deleted_alarms)
        ctx.checkpoint(force=True)
    for f in filters:
        ctx.clock.check()
        with contextlib.suppress(logs.exceptions.ResourceNotFoundException):
            logs.delete_metric_filter(logGroupName=f["logGroupName"], filterName=f["filterName"])
        key = f"{f['logGroupName']} {f['filterName']}"
        if key not in deleted_filters:
            deleted_filters.append(key)
        ctx.checkpoint()
    ctx.checkpoint(force=True)
    return CleanupSummary(
        deleted_alarms=list(deleted_alarms),
        deleted_metric_filters=len(deleted_filters),
        functions=len(functions),
    )


def plan_cleanup(rb: Runbook, p: CleanupParams) -> list[PlannedCall]:
    calls = []
    for fn in resolve_functions(rb, p.functions):
        calls.append(PlannedCall("cloudwatch", "DeleteAlarms", f"alarms on {fn}"))
        calls.append(PlannedCall("logs", "DeleteMetricFilter", rb.inventory.log_group_prefix + fn))
    return calls


ACTIONS = (
    Action(
        "create_monitoring",
        CreateParams,
        run_create,
        plan_create,
        "Create the migration dashboard and per-function error-rate alarms",
        cursors=CreateCursors,
        summary=CreateSummary,
    ),
    Action(
        "cleanup_monitoring",
        CleanupParams,
        run_cleanup,
        plan_cleanup,
        "Delete alarms and metric filters of the named (deprecated) functions",
        cursors=CleanupCursors,
        summary=CleanupSummary,
    ),
)
