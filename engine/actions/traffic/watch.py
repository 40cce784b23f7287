"""Watch windows and their rollback triggers: watch_window, and the watch shift_reads ends with.

A watch window waits in ticks (ctx.clock.sleep_plan, scaled by --time-scale). Its resume state
is `cursors.remaining_seconds` (plan seconds), decremented and checkpointed after each tick, so
a restarted window has exactly the time left it had. Each tick: the embedded simulator
publishes first, then the metrics are read with get_metric_data and the triggers evaluated.

When a trigger fires: an `Alert` event, a dict appended to `journal.alerts`:

    {trigger, step, phase, at, message, measured, threshold, rollback, auto_rollback}

and `TriggerFired` is raised, so the step fails and the operator decides on the rollback; where
the trigger (or the step's `auto_rollback`) rolls back on its own, `RollBackNow` is raised
instead and the engine runs the phase's non-destructive rollback at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from engine.actions.traffic.baseline import find_baseline
from engine.actions.traffic.sample import SampleCounts, sample_consistency
from engine.aws import metrics
from engine.aws.error_signals import read_errors
from engine.core.context import Action, ActionContext, PlannedCall, RollBackNow
from engine.core.events import Alert, MetricSample
from engine.runbook.model import Runbook, Trigger, auto_rollback_for
from engine.state.journal import Journal, utcnow
from engine.state.records import Cursors, Summary
from engine.state.resume import summary_of

TICK_PLAN_SECONDS = 60.0
MIN_REAL_TICK_SECONDS = 0.2  # at high time scales a tick covers more plan time
SAMPLE_EVERY_PLAN_SECONDS = 900.0  # consistency sample at most every 15 plan minutes
WATCH_PROGRESS = "watch window (plan seconds)"  # the progress row of a watch window


class TriggerFired(RuntimeError):
    """A rollback trigger fired during a watch window; the step fails."""


# --- resume state -----------------------------------------------------------------------------


class WatchCursors(Cursors):
    remaining_seconds: float | None = None  # plan seconds left in the window
    ticks: int = 0
    worst: dict[str, float] = {}  # metric -> worst value seen (read by the report)
    no_data: dict[str, int] = {}  # metric -> ticks without datapoints
    last_sample: SampleCounts | None = None
    streaks: dict[str, int] = {}  # trigger id -> readings in a row over its threshold
    warm_from: str | None = None  # when the warm-up ended: latency reads only what came after
    warming: int = 0  # ticks of warm-up (latency not read)


class WatchSummary(Summary):
    watched_minutes: float = 0.0
    ticks: int = 0
    worst: dict[str, float] = {}
    triggers: list[str] = []
    no_data: dict[str, int] | None = None  # only when some tick had no datapoints
    max_error_rate_percent: float | None = None  # read by the report
    max_latency_increase_percent: float | None = None
    warmup_ticks: int | None = None  # ticks whose latency was not read (cold starts)


def worst_error_rates(rb: Runbook, journal: Journal) -> list[float]:
    """Every watch window's worst error rate: finished (summary), or stopped (cursors)."""
    rates: list[float] = []
    for step in rb.steps:
        state = journal.steps.get(step.id)
        if step.action not in ("watch_window", "shift_reads") or state is None:
            continue
        where = f"steps.{step.id}"
        summary = summary_of(state, WatchSummary, f"{where}.summary")
        if summary and summary.max_error_rate_percent is not None:
            rates.append(summary.max_error_rate_percent)
        worst = state.read_cursors(WatchCursors, f"{where}.cursors").worst
        if "error_rate" in worst:
            rates.append(worst["error_rate"])
    return rates


# --- triggers ---------------------------------------------------------------------------------


def _phase(ctx: ActionContext) -> str:
    step = ctx.runbook.find_step(ctx.step_id)
    return step.phase if step else ""


def fire(
    ctx: ActionContext,
    trigger: Trigger,
    message: str,
    measured: float,
    auto_rollback: bool | None = None,
) -> None:
    phase = _phase(ctx)
    rollback = ctx.runbook.rollback_for(phase) if phase else None
    _, automatic = auto_rollback_for(ctx.runbook, phase, trigger, auto_rollback)
    ctx.emit(
        Alert(
            trigger.id,
            message,
            measured,
            trigger.threshold,
            proposed_rollback=rollback.id if rollback else None,
            step_id=ctx.step_id,
            auto_rollback=automatic is not None,
        )
    )
    ctx.journal.alerts.append(
        {
            "trigger": trigger.id,
            "step": ctx.step_id,
            "phase": phase,
            "at": utcnow(),
            "message": message,
            "measured": round(measured, 4),
            "threshold": trigger.threshold,
            "rollback": rollback.id if rollback else "",
            "auto_rollback": automatic is not None,
        }
    )
    ctx.log(f"ALERT {trigger.id}: {message}", "error")
    ctx.checkpoint(force=True)
    if automatic is not None:
        raise RollBackNow(
            f"trigger {trigger.id} fired: {message}; {automatic.id} runs automatically",
            rollback_phase=phase,
            by=f"trigger {trigger.id}",
        )
    raise TriggerFired(
        f"trigger {trigger.id} fired: {message}"
        + (f"; proposed rollback: {rollback.id}" if rollback else "")
    )


@dataclass
class Readings:
    """What one tick may count: `since` clamps the metrics window to after a warm-up (None: the
    whole window); `latency` is False while the warm-up lasts."""

    sample: bool
    latency: bool = True
    since: datetime | None = None
    required: int = 1  # readings in a row over a threshold before a trigger fires


def evaluate_triggers(
    ctx: ActionContext,
    triggers: list[Trigger],
    readings: Readings,
    missing_is_inconsistent: bool = False,
    auto_rollback: bool | None = None,
    cursors: WatchCursors | None = None,
) -> dict[str, float]:
    """Read the metrics once, emit samples (the consistency sample into `cursors`), count each
    trigger's readings in a row over its threshold (`cursors.streaks`), fire the first whose
    count reaches `readings.required` (an inconsistent item is a fact: at once)."""
    rb = ctx.runbook
    cw = ctx.client("cloudwatch")
    functions = list(rb.flags.functions)
    win = metrics.window(rb.monitoring.period_seconds / 60.0, ctx.clock.time_scale)
    if readings.since is not None and readings.since > win.start:
        win = metrics.Window(readings.since, win.end, win.period, win.plan_minutes)
    seen: dict[str, float] = {}
    last_sample: SampleCounts | None = None
    kinds = {t.metric for t in triggers}
    worst_errors = None
    invocations = 0.0
    if kinds & {"error_rate", "latency_increase"}:
        reading = read_errors(cw, functions, rb.inventory.api, win, rb.monitoring.min_requests)
        invocations = reading.lambda_rate.invocations
        worst_errors = reading.worst
        if "error_rate" in kinds and worst_errors is not None:
            seen["error_rate"] = worst_errors.percent
            ctx.emit(MetricSample(ctx.step_id, "error_rate", worst_errors.percent))
    enough = invocations >= rb.monitoring.min_requests
    if "latency_increase" in kinds and readings.latency and enough:
        # the baseline's own statistic, period and reduction: a mean minute of p99 is only
        # comparable with a mean minute of p99
        base, stat, period = find_baseline(ctx)
        stat = stat or metrics.latency_statistic(rb, ctx.world.percentiles)
        period = period or metrics.latency_period(rb, ctx.clock.time_scale)
        now = metrics.latency(cw, functions, stat, metrics.with_period(win, period), "mean")
        if now:
            ctx.emit(MetricSample(ctx.step_id, "latency", max(now.values())))
        increases = [100.0 * (now[f] - base[f]) / base[f] for f in now if base.get(f)]
        if increases:
            seen["latency_increase"] = max(increases)
    if "inconsistency" in kinds and readings.sample:
        c = SampleCounts(**sample_consistency(ctx))
        bad = c.mismatched + (c.missing if missing_is_inconsistent else 0)
        seen["inconsistency"] = float(bad)
        last_sample = c
        if cursors is not None:
            cursors.last_sample = c
        ctx.emit(MetricSample(ctx.step_id, "inconsistency", float(bad)))
    streaks = cursors.streaks if cursors is not None else {}
    for t in triggers:
        value = seen.get(t.metric)
        if value is None:
            continue  # no reading: the count stands, neither broken nor grown
        if value <= t.threshold:
            streaks[t.id] = 0
            continue
        streaks[t.id] = streaks.get(t.id, 0) + 1
        required = 1 if t.metric == "inconsistency" else readings.required
        if streaks[t.id] < required:
            ctx.log(
                f"{t.id}: {t.metric} {value:.2f} over {t.threshold:g} "
                f"({streaks[t.id]} of {required} readings in a row)",
                "warning",
            )
            continue
        if t.metric == "error_rate":
            source = f" ({worst_errors.name})" if worst_errors else ""
            msg = f"error rate {value:.2f}%{source} > {t.threshold:g}% over the last period"
        elif t.metric == "latency_increase":
            msg = f"latency +{value:.1f}% vs baseline > +{t.threshold:g}%"
        else:
            msg = (
                f"{value:.0f} of {last_sample.sampled if last_sample else 0} sampled legacy "
                "items differ from their company-scoped twins"
            )
        if required > 1:
            msg += f" ({required} readings in a row)"
        fire(ctx, t, msg, value, auto_rollback)
    return seen


def select_triggers(rb: Runbook, ids: list[str] | None) -> list[Trigger]:
    if ids is None:
        return list(rb.triggers)
    known = {t.id: t for t in rb.triggers}
    missing = [i for i in ids if i not in known]
    if missing:
        raise ValueError(f"unknown triggers: {', '.join(missing)}")
    return [known[i] for i in ids]


def watch(
    ctx: ActionContext,
    c: WatchCursors,
    minutes: float,
    triggers: list[Trigger],
    missing_is_inconsistent: bool = False,
    auto_rollback: bool | None = None,
) -> WatchSummary:
    """Resumable watch window; raises TriggerFired (RollBackNow where the trigger rolls back
    on its own) when a trigger trips. It starts after a change (a shift, new flags): latency
    readings wait out `monitoring.warmup_minutes` of cold starts, then read only what came
    after it."""
    mon = ctx.runbook.monitoring
    total = float(minutes) * 60.0
    if c.remaining_seconds is None:
        c.remaining_seconds = total
    tick = max(TICK_PLAN_SECONDS, MIN_REAL_TICK_SECONDS * ctx.clock.time_scale)
    ticks_in_window = max(1, math.ceil(total / tick))
    warmup = mon.warmup_minutes * 60.0
    while c.remaining_seconds > 0:
        ctx.clock.check()
        step = min(tick, c.remaining_seconds)
        last = c.remaining_seconds - step <= 0
        elapsed = total - c.remaining_seconds + step
        warming = elapsed <= warmup and not last  # a window of one reading reads it anyway
        ctx.clock.sleep_plan(step)
        if not warming and c.warm_from is None and warmup > 0 and c.ticks > 0:
            c.warm_from = datetime.now(UTC).isoformat()  # what comes now is past the cold starts
        ctx.world.tick(ctx.clients, ctx.runbook, step)
        every = max(1, math.ceil(SAMPLE_EVERY_PLAN_SECONDS / tick))
        sample = c.ticks % every == 0 or last
        counted = ticks_in_window - math.ceil(min(warmup, total) / tick)
        readings = Readings(
            sample=sample,
            latency=not warming,
            since=datetime.fromisoformat(c.warm_from) if c.warm_from else None,
            required=max(1, min(mon.consecutive_readings, counted)),
        )
        if warming:
            c.warming += 1
        seen = evaluate_triggers(ctx, triggers, readings, missing_is_inconsistent, auto_rollback, c)
        for k, v in seen.items():
            c.worst[k] = round(max(c.worst.get(k, v), v), 4)
        for t in triggers:  # no datapoints is "no data", never a quiet pass
            skipped = (t.metric == "inconsistency" and not sample) or (
                t.metric == "latency_increase" and warming
            )
            if t.metric not in seen and not skipped:
                c.no_data[t.metric] = c.no_data.get(t.metric, 0) + 1
        c.ticks += 1
        c.remaining_seconds = round(c.remaining_seconds - step, 3)
        ctx.progress(WATCH_PROGRESS, int(total - c.remaining_seconds), int(total))
        ctx.checkpoint(force=True)
    out = WatchSummary(
        watched_minutes=minutes,
        ticks=c.ticks,
        worst=dict(c.worst),
        triggers=[t.id for t in triggers],
        no_data=dict(c.no_data) or None,
        # read by the report (error-rate success criterion)
        max_error_rate_percent=c.worst.get("error_rate"),
        max_latency_increase_percent=c.worst.get("latency_increase"),
        warmup_ticks=c.warming or None,
    )
    for metric, n in sorted(c.no_data.items()):
        ctx.log(
            f"no data for {metric} in {n} of {c.ticks} ticks (or fewer than "
            f"{mon.min_requests} requests): its trigger could not fire then",
            "warning",
        )
    return out


# --- watch_window -----------------------------------------------------------------------------


class WatchParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    minutes: float = Field(gt=0)
    triggers: list[str] | None = None  # trigger ids; default: every runbook trigger
    missing_is_inconsistent: bool = False  # a legacy item without twin counts as inconsistent
    auto_rollback: bool | None = None  # None: each trigger's own setting


def run_watch(ctx: ActionContext, p: WatchParams) -> WatchSummary:
    triggers = select_triggers(ctx.runbook, p.triggers)
    cursors = ctx.cursors_as(WatchCursors)
    return watch(ctx, cursors, p.minutes, triggers, p.missing_is_inconsistent, p.auto_rollback)


def plan_watch(rb: Runbook, p: WatchParams) -> list[PlannedCall]:
    ids = p.triggers if p.triggers is not None else [t.id for t in rb.triggers]
    return [
        PlannedCall(
            "cloudwatch",
            "GetMetricData",
            "AWS/Lambda",
            f"every minute for {p.minutes:g} min; triggers {', '.join(ids)}",
        )
    ]


ACTIONS = (
    Action(
        "watch_window",
        WatchParams,
        run_watch,
        plan_watch,
        "Watch the metrics for a while; fail with an alert when a rollback trigger trips",
        waits=lambda p: p.minutes * 60.0,
        cursors=WatchCursors,
        summary=WatchSummary,
    ),
)
