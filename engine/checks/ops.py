"""Automatic gate items on live metrics and on the journal.

Metric windows are given in plan minutes and divided by the time scale (engine/aws/metrics.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engine.actions.prepare.monitoring import monitoring_of
from engine.actions.traffic.flags import resolve_functions
from engine.aws import metrics
from engine.aws.error_signals import read_errors
from engine.core.clock import plan_seconds_between
from engine.core.context import ActionContext, Check, CheckResult
from engine.core.timetext import plan_span, real_text


class _P(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _window(ctx: ActionContext, minutes: float) -> metrics.Window:
    """The query window; in the embedded world, traffic is simulated up to now first.

    Real traffic never stops between a watch window and a gate; the simulator only runs when
    ticked, so an embedded check ticks it once (nothing is published while no flag is set).
    """
    period = float(ctx.runbook.monitoring.period_seconds)
    ctx.world.tick(ctx.clients, ctx.runbook, min(minutes * 60.0, period))
    return metrics.window(minutes, ctx.clock.time_scale)


def _dims(dims: dict[str, str]) -> str:
    return " " + ",".join(f"{k}={v}" for k, v in sorted(dims.items())) if dims else ""


def _span(win: metrics.Window, ctx: ActionContext) -> str:
    """Plan time and real time said the same way everywhere (engine/core/timetext.py)."""
    return "last " + plan_span(win.plan_minutes, ctx.clock.time_scale, win.real_seconds)


# --- dual_write_success_rate ------------------------------------------------------------------


class DualWriteParams(_P):
    min_percent: float = Field(ge=0, le=100)
    window_minutes: float = Field(gt=0)


def dual_write_success_rate(ctx: ActionContext, p: DualWriteParams) -> CheckResult:
    win = _window(ctx, p.window_minutes)
    mon = ctx.runbook.monitoring
    dw = metrics.dual_write(ctx.client("cloudwatch"), mon, win)
    data = {"success": dw.success, "failure": dw.failure, "window_minutes": p.window_minutes}
    if not dw.has_data:
        data["no_data"] = True
        return CheckResult(
            False,
            f"no data: no dual-write data points in the {_span(win, ctx)} "
            f"({mon.namespace} {mon.dual_write_success_metric}/{mon.dual_write_failure_metric}"
            f"{_dims(mon.dual_write_dimensions)}); cannot confirm > {p.min_percent:g}%",
            data,
        )
    data["percent"] = round(dw.percent, 4)
    ok = dw.percent > p.min_percent
    return CheckResult(
        ok,
        f"dual-write success {dw.percent:.3f}% ({dw.success:.0f} ok, "
        f"{dw.failure:.0f} failed) {'>' if ok else '<='} {p.min_percent:g}%"
        f" over the {_span(win, ctx)}",
        data,
    )


# --- error_rate_below / error_count_zero ------------------------------------------------------


class ErrorRateParams(_P):
    max_percent: float = Field(ge=0)
    window_minutes: float = Field(gt=0)
    functions: list[str] | None = None  # selectors; default: the flagged functions


class ErrorCountParams(_P):
    window_minutes: float = Field(gt=0)
    functions: list[str] | None = None


def _functions(ctx: ActionContext, selectors: list[str] | None) -> list[str]:

    return resolve_functions(ctx.runbook, selectors)


def error_rate_below(ctx: ActionContext, p: ErrorRateParams) -> CheckResult:
    win = _window(ctx, p.window_minutes)
    rb = ctx.runbook
    reading = read_errors(
        ctx.client("cloudwatch"),
        _functions(ctx, p.functions),
        rb.inventory.api,
        win,
        rb.monitoring.min_requests,
    )
    er = reading.lambda_rate
    data: dict = {
        "errors": er.errors,
        "invocations": er.invocations,
        "signals": {s.name: [s.failed, s.requests] for s in reading.signals},
    }
    worst = reading.worst
    if worst is None:
        data["no_data"] = True
        why = (
            f"fewer than {rb.monitoring.min_requests} requests"
            if reading.too_little_traffic
            else "no invocations recorded"
        )
        return CheckResult(
            False,
            f"no data: {why} in the {_span(win, ctx)}; no error rate to compare",
            data,
        )
    data["percent"] = round(worst.percent, 4)
    ok = worst.percent < p.max_percent
    return CheckResult(
        ok,
        f"error rate {worst.percent:.3f}% ({worst.name}: {worst.failed:.0f}/"
        f"{worst.requests:.0f}) {'<' if ok else '>='} {p.max_percent:g}% "
        f"over the {_span(win, ctx)}",
        data,
    )


def error_count_zero(ctx: ActionContext, p: ErrorCountParams) -> CheckResult:
    win = _window(ctx, p.window_minutes)
    er = metrics.error_rate(ctx.client("cloudwatch"), _functions(ctx, p.functions), win)
    worst = sorted(((e, fn) for fn, (e, _) in er.per_function.items() if e), reverse=True)
    data = {
        "errors": er.errors,
        "invocations": er.invocations,
        "functions_with_errors": [fn for _, fn in worst[:10]],
    }
    if er.errors:
        return CheckResult(
            False,
            f"{er.errors:.0f} errors in the {_span(win, ctx)} (most: "
            f"{', '.join(fn for _, fn in worst[:3])})",
            data,
        )
    if not er.has_data:  # like error_rate_below: no traffic is no evidence, not a pass
        data["no_data"] = True
        return CheckResult(
            False,
            f"no data: no invocations recorded in the {_span(win, ctx)}: zero errors cannot be "
            "confirmed",
            data,
        )
    return CheckResult(
        True, f"zero errors in {er.invocations:.0f} invocations over the {_span(win, ctx)}", data
    )


# --- monitoring_ready -------------------------------------------------------------------------


class StepParams(_P):
    step: str


def monitoring_ready(ctx: ActionContext, p: StepParams) -> CheckResult:
    state = ctx.journal.steps.get(p.step)
    if state is None or state.status != "done":
        return CheckResult(False, f"step {p.step} has not completed", {})
    cw = ctx.client("cloudwatch")
    made = monitoring_of(ctx.journal, p.step)
    dashboard = (made.dashboard if made else None) or ctx.runbook.monitoring.dashboard
    alarms = list(made.alarms) if made else []
    try:
        cw.get_dashboard(DashboardName=dashboard)
        has_dashboard = True
    except cw.exceptions.ResourceNotFound:
        has_dashboard = False
    found: set[str] = set()
    for i in range(0, len(alarms), 100):
        resp = cw.describe_alarms(AlarmNames=alarms[i : i + 100])
        found |= {a["AlarmName"] for a in resp.get("MetricAlarms", [])}
    missing = [a for a in alarms if a not in found]
    data = {"dashboard": dashboard, "alarms": len(found), "missing_alarms": missing}
    ok = has_dashboard and bool(alarms) and not missing
    parts = [
        f"dashboard {dashboard} {'exists' if has_dashboard else 'MISSING'}",
        f"{len(found)}/{len(alarms)} alarms exist",
    ]
    if missing:
        parts.append("missing: " + ", ".join(missing[:5]))
    return CheckResult(ok, "; ".join(parts), data)


# --- elapsed_since_step / steps_done ----------------------------------------------------------


class ElapsedParams(_P):
    step: str
    hours: float = Field(ge=0)


def _parse(ts: str | datetime) -> datetime:
    if isinstance(ts, datetime):  # the journal keeps datetimes
        return ts
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def elapsed_since_step(ctx: ActionContext, p: ElapsedParams) -> CheckResult:
    state = ctx.journal.steps.get(p.step)
    if state is None or state.status != "done" or not state.finished_at:
        return CheckResult(
            False, f"step {p.step} has not finished; need {p.hours:g} h after it", {}
        )
    since, now = _parse(state.finished_at), datetime.now(UTC)
    steps = ctx.journal.run.scale_steps()  # each stretch at the scale it ran at
    plan_hours = plan_seconds_between(steps, ctx.clock.time_scale, since, now) / 3600.0
    ok = plan_hours >= p.hours
    scale = f" (x{ctx.clock.time_scale:g} time scale)" if ctx.clock.time_scale != 1 else ""
    data: dict[str, object] = {
        "elapsed_hours": round(plan_hours, 3),
        "required_hours": p.hours,
        "finished_at": state.finished_at,
    }
    detail = (
        f"{plan_hours:.1f} h since {p.step} finished{scale}; "
        f"{'>=' if ok else '<'} {p.hours:g} h required"
    )
    if not ok:  # when, on the wall clock, at the clock's pace now
        wall = (p.hours - plan_hours) * 3600.0 / ctx.clock.time_scale
        met_at = now + timedelta(seconds=wall)
        data["met_at"] = met_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        detail += f"; met at {met_at:%H:%M}Z (in {real_text(wall)})"
    return CheckResult(ok, detail, data)


def steps_done(ctx: ActionContext, p: _P) -> CheckResult:
    pending: list[str] = []
    for step in ctx.runbook.steps:
        state = ctx.journal.steps.get(step.id)
        if state is None or state.status not in ("done", "skipped"):
            pending.append(f"{step.id} ({state.status if state else 'pending'})")
    total = len(ctx.runbook.steps)
    data: dict[str, Any] = {"done": total - len(pending), "total": total, "not_done": pending[:20]}
    if pending:
        return CheckResult(
            False,
            f"{len(pending)} of {total} steps not done: "
            + ", ".join(pending[:5])
            + ("..." if len(pending) > 5 else ""),
            data,
        )
    return CheckResult(True, f"all {total} steps done or skipped", data)


CHECKS = (
    Check(
        "dual_write_success_rate",
        DualWriteParams,
        dual_write_success_rate,
        "Dual-write success rate above a minimum, from the custom-namespace counts",
    ),
    Check(
        "error_rate_below",
        ErrorRateParams,
        error_rate_below,
        "Lambda error rate (Errors/Invocations) below a maximum over a window",
    ),
    Check("error_count_zero", ErrorCountParams, error_count_zero, "No Lambda errors over a window"),
    Check(
        "monitoring_ready",
        StepParams,
        monitoring_ready,
        "The monitoring step's dashboard and alarms exist",
    ),
    Check(
        "elapsed_since_step",
        ElapsedParams,
        elapsed_since_step,
        "At least N plan hours since a step finished",
        waits=lambda p: p.hours * 3600.0,
    ),
    Check("steps_done", _P, steps_done, "Every step of the runbook is done or skipped"),
)
