"""Traffic phases: the latency baseline, read shifts and watch windows with rollback triggers.

A watch window waits in ticks (ctx.clock.sleep_plan, scaled by --time-scale). Its resume state
is `cursors.remaining_seconds` (plan seconds), decremented and checkpointed after each tick, so
a restarted window has exactly the time left it had. Each tick: the embedded simulator
publishes first, then the metrics are read with get_metric_data and the triggers evaluated.

When a trigger fires: an `Alert` event, a dict appended to `journal.alerts`:

    {trigger, step, phase, at, message, measured, threshold, rollback, auto_rollback}

and `TriggerFired` is raised, so the step fails and the operator decides on the rollback; where
the trigger (or the step's `auto_rollback`) rolls back on its own, `RollBackNow` is raised
instead and the engine runs the phase's non-destructive rollback at once.

capture_baseline cursors: `baseline = {"<function>" = ms}`, `statistic = "Average"|"p99"`.
"""

from __future__ import annotations

import math
import random
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engine import dynamo, metrics, simulator
from engine.actions.analyze import KeyIndex, open_index
from engine.actions.flags import FlagCursors, FlagsSummary, apply_flags
from engine.actions.mapping import Resolver, build_resolver
from engine.context import Action, ActionContext, PlannedCall, RollBackNow
from engine.events import Alert, MetricSample
from engine.journal import Journal, utcnow
from engine.model import EntitySpec, Runbook, Trigger, auto_rollback_for
from engine.resume import Cursors, Record, Summary, cursors_of, summary_of
from engine.transforms import CREATED_BY, UPDATED_AT, classify_legacy, is_newer

TICK_PLAN_SECONDS = 60.0
MIN_REAL_TICK_SECONDS = 0.2  # at high time scales a tick covers more plan time
SAMPLE_EVERY_PLAN_SECONDS = 900.0  # consistency sample at most every 15 plan minutes
WATCH_PROGRESS = "watch window (plan seconds)"  # the progress row of a watch window
SAMPLE_SEGMENTS = 8  # a sample starts at a random segment of the legacy table
METADATA_ATTRS = frozenset(
    {
        "createdAt",
        "updatedAt",
        "createdBy",
        "updatedBy",
        "migratedAt",
        "migratedFrom",
        "migrationTs",
        "migrationId",
        "legacyUserId",
        "version",
        "ttl",
    }
)


class TriggerFired(RuntimeError):
    """A rollback trigger fired during a watch window; the step fails."""


# --- consistency sampler ----------------------------------------------------------------------


def _key_names(ddb: Any, table: str, cache: dict[str, list[str]]) -> list[str]:
    if table not in cache:
        schema = ddb.describe_table(TableName=table)["Table"]["KeySchema"]
        cache[table] = [k["AttributeName"] for k in schema]
    return cache[table]


def _sample(ddb: Any, table: str, size: int, rng: random.Random) -> list[dict[str, Any]]:
    """Up to `size` items, starting at a random segment and moving on while short."""
    start = rng.randrange(SAMPLE_SEGMENTS)
    items: list[dict[str, Any]] = []
    for offset in range(SAMPLE_SEGMENTS):
        page = ddb.scan(
            TableName=table,
            Limit=size - len(items),
            Segment=(start + offset) % SAMPLE_SEGMENTS,
            TotalSegments=SAMPLE_SEGMENTS,
        )
        items += page.get("Items", [])
        if len(items) >= size:
            break
    return items


def sample_consistency(ctx: ActionContext, rng: random.Random | None = None) -> dict[str, int]:
    """Compare a sample of each legacy entity table with the company-scoped twins.

    Each call starts at a random parallel-scan segment (up to `sample_size` items), so
    successive samples move over the whole table and reach items the application wrote lately.
    Users map to companies exactly as the migration maps them (overrides, memberships, orphans).
    Returns counts: sampled, compared (twin found), missing (no twin yet), excluded (already
    reported by the migration: malformed, collision, newer twin), unmapped (no single
    company), mismatched (twin differs in a non-metadata attribute).
    """
    rb = ctx.runbook
    ddb = ctx.client("dynamodb")
    rng = rng or random.Random()
    resolver = build_resolver(ctx) if rb.mapping is not None else None
    keys: dict[str, list[str]] = {}
    counts = {
        "sampled": 0,
        "compared": 0,
        "missing": 0,
        "unmapped": 0,
        "mismatched": 0,
        "excluded": 0,  # reported by the migration already: malformed, collisions, newer twins
    }
    index = open_index(ctx)
    try:
        for entity in rb.entities:
            try:
                sample = _sample(ddb, entity.source, rb.monitoring.sample_size, rng)
                target_keys = _key_names(ddb, entity.target, keys)
            except ddb.exceptions.ResourceNotFoundException:
                continue
            items = [dynamo.to_python(raw) for raw in sample]
            twins = _twins(ctx, entity, items, resolver, target_keys)  # BatchGetItem, 100 keys
            for item in items:
                counts["sampled"] += 1
                outcome = _compare_twin(ctx, entity, item, resolver, index, target_keys, twins)
                counts[outcome] += 1
                if outcome == "mismatched":
                    counts["compared"] += 1
    finally:
        if index is not None:
            index.close()
    return counts


def _twins(
    ctx: ActionContext,
    entity: EntitySpec,
    items: list[dict[str, Any]],
    resolver: Resolver | None,
    target_keys: list[str],
) -> dict[tuple[str, str], dict[str, Any]]:
    """The company-scoped twins of the sampled items, read strongly consistent in batches."""
    keys: list[dict[str, Any]] = []
    if resolver is None or {entity.company_attr, entity.id_attr} != set(target_keys):
        return {}
    for item in items:
        if classify_legacy(entity, item) is not None:
            continue
        company = resolver.company_for(item[entity.user_attr])
        if company is not None:
            keys.append({entity.company_attr: company, entity.id_attr: item[entity.id_attr]})
    got = dynamo.batch_get(ctx.client("dynamodb"), entity.target, keys, consistent=True)
    return {(str(t[entity.company_attr]), str(t[entity.id_attr])): t for t in got}


def _compare_twin(
    ctx: ActionContext,
    entity: EntitySpec,
    item: dict[str, Any],
    resolver: Resolver | None,
    index: KeyIndex | None,
    target_keys: list[str],
    twins: dict[tuple[str, str], dict[str, Any]],
) -> str:
    """One legacy item against its company-scoped twin; returns the counter it falls under.
    Values are compared deserialised, so string sets compare as sets, not in wire order."""
    if classify_legacy(entity, item) is not None:
        return "excluded"  # quarantined by the migration
    user, ident = item[entity.user_attr], item[entity.id_attr]
    company = resolver.company_for(user) if resolver else None
    if company is None or {entity.company_attr, entity.id_attr} != set(target_keys):
        return "unmapped"
    if index is not None and index.is_collision(entity.name, company, ident):
        return "excluded"  # a collision: written by neither side, reported
    twin = twins.get((company, ident))
    if twin is None:
        return "missing"
    if twin.get(CREATED_BY) not in (None, user) or is_newer(twin.get(UPDATED_AT), ctx.migration_ts):
        return "excluded"  # another user's item, or the application's newer write: reported
    skip = METADATA_ATTRS | {entity.user_attr, entity.company_attr}
    if any(twin.get(a) != v for a, v in item.items() if a not in skip):
        return "mismatched"
    return "compared"


# --- resume state -----------------------------------------------------------------------------


class SampleCounts(Record):
    """The last consistency sample: legacy items read, and what their twins showed."""

    sampled: int = 0
    compared: int = 0
    missing: int = 0
    unmapped: int = 0
    mismatched: int = 0
    excluded: int = 0


class WatchCursors(Cursors):
    remaining_seconds: float | None = None  # plan seconds left in the window
    ticks: int = 0
    worst: dict[str, float] = {}  # metric -> worst value seen (read by the report)
    no_data: dict[str, int] = {}  # metric -> ticks without datapoints
    last_sample: SampleCounts | None = None


class WatchSummary(Summary):
    watched_minutes: float = 0.0
    ticks: int = 0
    worst: dict[str, float] = {}
    triggers: list[str] = []
    no_data: dict[str, int] | None = None  # only when some tick had no datapoints
    max_error_rate_percent: float | None = None  # read by the report
    max_latency_increase_percent: float | None = None


class ShiftCursors(FlagCursors, WatchCursors):
    """shift_reads: its flag change, then its watch window."""


class ShiftSummary(WatchSummary):
    percent: int = 0
    functions: int = 0
    changed: int = 0


class BaselineCursors(Cursors):
    baseline: dict[str, float] | None = None  # function -> ms
    statistic: str = ""  # "Average" | "p99"
    period_seconds: int = 0


class BaselineSummary(Summary):
    statistic: str = ""
    functions: int = 0
    baseline_ms: float | None = None
    no_data: bool | None = None  # True when the window had no Duration data


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
    step = next((s for s in ctx.runbook.steps if s.id == ctx.step_id), None)
    return step.phase if step else ""


def find_baseline(ctx: ActionContext) -> tuple[dict[str, float], str, int]:
    """The latest captured baseline (capture_baseline steps, latest in runbook order), with
    the statistic and period it was measured with ("" and 0 when there is none)."""
    for step in reversed(ctx.runbook.steps):
        if step.action == "capture_baseline":
            c = cursors_of(ctx.journal, step.id, BaselineCursors)
            if c and c.baseline:
                return dict(c.baseline), c.statistic, c.period_seconds
    return {}, "", 0


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


def evaluate_triggers(
    ctx: ActionContext,
    triggers: list[Trigger],
    sample: bool,
    missing_is_inconsistent: bool = False,
    auto_rollback: bool | None = None,
    cursors: WatchCursors | None = None,
) -> dict[str, float]:
    """Read the metrics once, emit samples (the consistency sample into `cursors`), fire the
    first trigger that trips."""
    rb = ctx.runbook
    cw = ctx.client("cloudwatch")
    functions = list(rb.flags.functions)
    win = metrics.window(rb.monitoring.period_seconds / 60.0, ctx.clock.time_scale)
    seen: dict[str, float] = {}
    last_sample: SampleCounts | None = None
    kinds = {t.metric for t in triggers}
    if "error_rate" in kinds:
        er = metrics.error_rate(cw, functions, win)
        if er.has_data:
            seen["error_rate"] = er.percent
            ctx.emit(MetricSample(ctx.step_id, "error_rate", er.percent))
    if "latency_increase" in kinds:
        # the baseline's own statistic and period: a p99 is only comparable with a p99 of
        # the same period
        base, stat, period = find_baseline(ctx)
        stat = stat or metrics.latency_statistic(rb, ctx.is_embedded)
        period = period or metrics.latency_period(rb, ctx.clock.time_scale)
        now = metrics.latency(cw, functions, stat, metrics.with_period(win, period))
        if now:
            ctx.emit(MetricSample(ctx.step_id, "latency", max(now.values())))
        increases = [100.0 * (now[f] - base[f]) / base[f] for f in now if base.get(f)]
        if increases:
            seen["latency_increase"] = max(increases)
    if "inconsistency" in kinds and sample:
        c = SampleCounts(**sample_consistency(ctx))
        bad = c.mismatched + (c.missing if missing_is_inconsistent else 0)
        seen["inconsistency"] = float(bad)
        last_sample = c
        if cursors is not None:
            cursors.last_sample = c
        ctx.emit(MetricSample(ctx.step_id, "inconsistency", float(bad)))
    for t in triggers:
        value = seen.get(t.metric)
        if value is None or value <= t.threshold:
            continue
        if t.metric == "error_rate":
            msg = f"error rate {value:.2f}% > {t.threshold:g}% over the last period"
        elif t.metric == "latency_increase":
            msg = f"latency +{value:.1f}% vs baseline > +{t.threshold:g}%"
        else:
            msg = (
                f"{value:.0f} of {last_sample.sampled if last_sample else 0} sampled legacy "
                "items differ from their company-scoped twins"
            )
        fire(ctx, t, msg, value, auto_rollback)
    return seen


def _triggers(rb: Runbook, ids: list[str] | None) -> list[Trigger]:
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
    on its own) when a trigger trips."""
    total = float(minutes) * 60.0
    if c.remaining_seconds is None:
        c.remaining_seconds = total
    tick = max(TICK_PLAN_SECONDS, MIN_REAL_TICK_SECONDS * ctx.clock.time_scale)
    while c.remaining_seconds > 0:
        ctx.clock.check()
        step = min(tick, c.remaining_seconds)
        ctx.clock.sleep_plan(step)
        if ctx.is_embedded:
            simulator.publish_tick(ctx.clients, ctx.runbook, step)
        every = max(1, math.ceil(SAMPLE_EVERY_PLAN_SECONDS / tick))
        sample = c.ticks % every == 0 or c.remaining_seconds - step <= 0
        seen = evaluate_triggers(ctx, triggers, sample, missing_is_inconsistent, auto_rollback, c)
        for k, v in seen.items():
            c.worst[k] = round(max(c.worst.get(k, v), v), 4)
        for t in triggers:  # no datapoints is "no data", never a quiet pass
            if t.metric not in seen and (t.metric != "inconsistency" or sample):
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
    )
    for metric, n in sorted(c.no_data.items()):
        ctx.log(
            f"no data for {metric} in {n} of {c.ticks} ticks: its trigger could not fire then",
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
    triggers = _triggers(ctx.runbook, p.triggers)
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


# --- shift_reads ------------------------------------------------------------------------------


class ShiftParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    percent: int = Field(ge=0, le=100)
    watch_minutes: float = Field(ge=0)
    triggers: list[str] | None = None
    functions: list[str] | None = None
    missing_is_inconsistent: bool = False
    auto_rollback: bool | None = None  # None: each trigger's own setting


def run_shift(ctx: ActionContext, p: ShiftParams) -> ShiftSummary:
    from engine.actions.flags import resolve_functions

    flags = ctx.runbook.flags
    values = {flags.read_company_scoped: "true", flags.read_percent: str(p.percent)}
    cursors = ctx.cursors_as(ShiftCursors)
    shifted: FlagsSummary = apply_flags(
        ctx, cursors, resolve_functions(ctx.runbook, p.functions), values
    )
    watched = WatchSummary()
    if p.watch_minutes > 0:
        triggers = _triggers(ctx.runbook, p.triggers)
        watched = watch(
            ctx, cursors, p.watch_minutes, triggers, p.missing_is_inconsistent, p.auto_rollback
        )
    return ShiftSummary(
        **watched.model_dump(exclude_unset=True),
        percent=p.percent,
        functions=shifted.functions,
        changed=shifted.changed,
    )


def plan_shift(rb: Runbook, p: ShiftParams) -> list[PlannedCall]:
    from engine.actions.flags import plan_flag_calls, resolve_functions

    values = {rb.flags.read_company_scoped: "true", rb.flags.read_percent: str(p.percent)}
    calls = plan_flag_calls(rb, resolve_functions(rb, p.functions), values)
    return [
        *calls,
        PlannedCall("cloudwatch", "GetMetricData", "AWS/Lambda", f"watch {p.watch_minutes:g} min"),
    ]


# --- capture_baseline -------------------------------------------------------------------------


class BaselineParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    minutes: float = Field(gt=0)


def run_baseline(ctx: ActionContext, p: BaselineParams) -> BaselineSummary:
    rb = ctx.runbook
    stat = metrics.latency_statistic(rb, ctx.is_embedded)
    c = ctx.cursors_as(BaselineCursors)
    if c.baseline is None:
        if ctx.is_embedded:
            simulator.publish_tick(ctx.clients, rb, rb.monitoring.period_seconds)
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
        "watch_window",
        WatchParams,
        run_watch,
        plan_watch,
        "Watch the metrics for a while; fail with an alert when a rollback trigger trips",
        waits=lambda p: p.minutes * 60.0,
        cursors=WatchCursors,
        summary=WatchSummary,
    ),
    Action(
        "shift_reads",
        ShiftParams,
        run_shift,
        plan_shift,
        "Shift a share of reads to company-scoped tables, then watch",
        waits=lambda p: p.watch_minutes * 60.0,
        cursors=ShiftCursors,
        summary=ShiftSummary,
    ),
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
