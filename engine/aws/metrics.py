"""CloudWatch reads for watch windows, gate checks and the latency baseline (get_metric_data).

Windows are given in *plan* minutes and divided by the clock's time scale for the real query
window (never shorter than MIN_WINDOW_SECONDS). Periods are coarse so that a 12 h or 24 h
window costs a handful of data points; every figure here is a sum or a per-function statistic
over the whole window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.runbook.model import MonitoringSpec, Runbook

LAMBDA_NAMESPACE = "AWS/Lambda"
MIN_WINDOW_SECONDS = 120.0
MAX_POINTS = 24  # per metric per window
MAX_QUERIES = 500  # get_metric_data limit per call
END_SLACK_SECONDS = 60.0  # a point published "now" must fall inside the window


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    period: int  # seconds, a multiple of 60
    plan_minutes: float

    @property
    def real_seconds(self) -> float:
        return (self.end - self.start).total_seconds() - END_SLACK_SECONDS


def window(plan_minutes: float, time_scale: float, now: datetime | None = None) -> Window:
    """The real query window for `plan_minutes` of plan time, ending now (plus a small slack)."""
    now = now or datetime.now(UTC)
    real = max(MIN_WINDOW_SECONDS, plan_minutes * 60.0 / time_scale)
    period = max(60, math.ceil(real / MAX_POINTS / 60.0) * 60)
    # a point published "now" must fall inside the window: end a minute late
    return Window(
        now - timedelta(seconds=real),
        now + timedelta(seconds=END_SLACK_SECONDS),
        period,
        plan_minutes,
    )


def latency_statistic(rb: Runbook, percentiles: bool) -> str:
    """p99 on AWS; moto has no percentile statistics, so the embedded world uses Average."""
    mon = rb.monitoring
    return mon.latency_statistic_aws if percentiles else mon.latency_statistic_embedded


def _fn_metric(name: str, fn: str) -> dict[str, Any]:
    return {
        "Namespace": LAMBDA_NAMESPACE,
        "MetricName": name,
        "Dimensions": [{"Name": "FunctionName", "Value": fn}],
    }


def fetch(cw: Any, queries: list[dict[str, Any]], win: Window) -> dict[str, list[float]]:
    """Run get_metric_data (paged, in chunks of MAX_QUERIES); returns id -> values."""
    out: dict[str, list[float]] = {q["Id"]: [] for q in queries}
    for i in range(0, len(queries), MAX_QUERIES):
        kwargs: dict[str, Any] = {
            "MetricDataQueries": queries[i : i + MAX_QUERIES],
            "StartTime": win.start,
            "EndTime": win.end,
        }
        while True:
            page = cw.get_metric_data(**kwargs)
            for res in page.get("MetricDataResults", []):
                out.setdefault(res["Id"], []).extend(float(v) for v in res.get("Values", []))
            token = page.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token
    return out


def stat_query(qid: str, metric: dict[str, Any], stat: str, period: int) -> dict[str, Any]:
    return {
        "Id": qid,
        "MetricStat": {"Metric": metric, "Period": period, "Stat": stat},
        "ReturnData": True,
    }


@dataclass(frozen=True)
class ErrorRate:
    errors: float
    invocations: float
    per_function: dict[str, tuple[float, float]]  # fn -> (errors, invocations)
    throttles: float = 0.0  # invocations Lambda refused (not counted in Invocations)

    @property
    def has_data(self) -> bool:
        return self.invocations > 0

    @property
    def percent(self) -> float:
        return 100.0 * self.errors / self.invocations if self.invocations else 0.0


def error_rate(cw: Any, functions: list[str], win: Window) -> ErrorRate:
    """Lambda Errors / Invocations summed over the window, per function and in total, and the
    Throttles beside them."""
    queries = []
    for n, fn in enumerate(functions):
        queries.append(stat_query(f"e{n}", _fn_metric("Errors", fn), "Sum", win.period))
        queries.append(stat_query(f"i{n}", _fn_metric("Invocations", fn), "Sum", win.period))
        queries.append(stat_query(f"t{n}", _fn_metric("Throttles", fn), "Sum", win.period))
    values = fetch(cw, queries, win) if queries else {}
    per: dict[str, tuple[float, float]] = {}
    for n, fn in enumerate(functions):
        per[fn] = (sum(values.get(f"e{n}", [])), sum(values.get(f"i{n}", [])))
    throttles = sum(sum(values.get(f"t{n}", [])) for n in range(len(functions)))
    return ErrorRate(
        sum(e for e, _ in per.values()), sum(i for _, i in per.values()), per, throttles
    )


def latency(
    cw: Any, functions: list[str], statistic: str, win: Window, reduce: str = "max"
) -> dict[str, float]:
    """Duration per function (ms) with `statistic` per period; functions without data are
    left out. `reduce` folds the periods of the window: "max" (the worst period, for a watch)
    or "mean" (a typical period, for a baseline). A comparison must use the same statistic
    and the same period on both sides (see latency_window).
    """
    queries = [
        stat_query(f"d{n}", _fn_metric("Duration", fn), statistic, win.period)
        for n, fn in enumerate(functions)
    ]
    values = fetch(cw, queries, win) if queries else {}
    out: dict[str, float] = {}
    for n, fn in enumerate(functions):
        vals = values.get(f"d{n}", [])
        if vals:
            out[fn] = max(vals) if reduce == "max" else sum(vals) / len(vals)
    return out


def latency_period(rb: Runbook, time_scale: float) -> int:
    """The one period both the baseline and every watch tick use for latency: the period a
    watch tick's window gets (runbook monitoring.period_seconds, scaled)."""
    return window(rb.monitoring.period_seconds / 60.0, time_scale).period


def with_period(win: Window, period: int) -> Window:
    return Window(win.start, win.end, period, win.plan_minutes)


@dataclass(frozen=True)
class DualWrite:
    success: float
    failure: float

    @property
    def total(self) -> float:
        return self.success + self.failure

    @property
    def has_data(self) -> bool:
        return self.total > 0

    @property
    def percent(self) -> float:
        return 100.0 * self.success / self.total if self.total else 0.0


def dual_write_metric(mon: MonitoringSpec, name: str) -> dict[str, Any]:
    """A dual-write metric exactly as the application publishes it (runbook data): CloudWatch
    matches namespace, name and the full set of dimensions."""
    metric: dict[str, Any] = {"Namespace": mon.namespace, "MetricName": name}
    if mon.dual_write_dimensions:
        metric["Dimensions"] = [
            {"Name": k, "Value": v} for k, v in sorted(mon.dual_write_dimensions.items())
        ]
    return metric


def dual_write(cw: Any, mon: MonitoringSpec, win: Window) -> DualWrite:
    """Success/failure counts the application (or the simulator) publishes."""
    queries = [
        stat_query("s", dual_write_metric(mon, mon.dual_write_success_metric), "Sum", win.period),
        stat_query("f", dual_write_metric(mon, mon.dual_write_failure_metric), "Sum", win.period),
    ]
    values = fetch(cw, queries, win)
    return DualWrite(sum(values.get("s", [])), sum(values.get("f", [])))
