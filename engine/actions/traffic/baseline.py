"""capture_baseline: the latency baseline the `latency_increase` trigger compares with.

cursors: `baseline = {"<function>" = ms}`, `statistic = "Average"|"p99"`, `period_seconds`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from engine.aws import metrics
from engine.core.context import Action, ActionContext, PlannedCall
from engine.core.events import MetricSample
from engine.runbook.model import Runbook
from engine.state.records import Cursors, Summary
from engine.state.resume import cursors_of


class BaselineCursors(Cursors):
    baseline: dict[str, float] | None = None  # function -> ms
    statistic: str = ""  # "Average" | "p99"
    period_seconds: int = 0


class BaselineSummary(Summary):
    statistic: str = ""
    functions: int = 0
    baseline_ms: float | None = None
    no_data: bool | None = None  # True when the window had no Duration data


def find_baseline(ctx: ActionContext) -> tuple[dict[str, float], str, int]:
    """The latest captured baseline (capture_baseline steps, latest in runbook order), with
    the statistic and period it was measured with ("" and 0 when there is none)."""
    for step in reversed(ctx.runbook.steps):
        if step.action == "capture_baseline":
            c = cursors_of(ctx.journal, step.id, BaselineCursors)
            if c and c.baseline:
                return dict(c.baseline), c.statistic, c.period_seconds
    return {}, "", 0


class BaselineParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    minutes: float = Field(gt=0)


def run_baseline(ctx: ActionContext, p: BaselineParams) -> BaselineSummary:
    rb = ctx.runbook
    stat = metrics.latency_statistic(rb, ctx.world.percentiles)
    c = ctx.cursors_as(BaselineCursors)
    if c.baseline is None:
        ctx.world.tick(ctx.clients, rb, rb.monitoring.period_seconds)
        # the period every watch tick will use, so both sides are the same measure
        period = metrics.latency_period(rb, ctx.clock.time_scale)
        win = metrics.with_period(metrics.window(p.minutes, ctx.clock.time_scale), period)
        values = metrics.latency(
            ctx.client("cloudwatch"), list(rb.flags.functions), stat, win, reduce="mean"
        )
        c.baseline = {k: round(v, 3) for k, v in values.items()}
        c.statistic = stat
        c.period_seconds = period
        ctx.checkpoint(force=True)
    baseline = c.baseline
    if not baseline:
        ctx.log(
            "no Duration data in the baseline window; the latency trigger cannot fire", "warning"
        )
        return BaselineSummary(statistic=stat, functions=0, no_data=True)
    for fn, ms in sorted(baseline.items()):
        ctx.emit(MetricSample(ctx.step_id, "latency", float(ms)))
        ctx.log(f"{fn}: {stat} Duration {ms:.1f} ms")
    return BaselineSummary(
        statistic=stat, functions=len(baseline), baseline_ms=round(max(baseline.values()), 3)
    )


def plan_baseline(rb: Runbook, p: BaselineParams) -> list[PlannedCall]:
    return [
        PlannedCall(
            "cloudwatch", "GetMetricData", f"AWS/Lambda Duration {fn}", f"last {p.minutes:g} min"
        )
        for fn in rb.flags.functions
    ]


ACTIONS = (
    Action(
        "capture_baseline",
        BaselineParams,
        run_baseline,
        plan_baseline,
        "Capture the latency baseline the latency trigger compares with",
        cursors=BaselineCursors,
        summary=BaselineSummary,
    ),
)
