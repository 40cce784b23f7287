"""validate_migration (plan section 5, "Data Validation Approach" / section 9 validationResults).

The comparison (what counts as migrated, missing, a collision...) is in
engine/actions/validate/compare.py.

Artifact `validation-<step>.jsonl`: one problem per line {"entity","kind","key","detail"}.
Summary:
    recordCounts {entity: {source, target, match, not_migrated}},
    dataIntegrity {checksum, relationships, requiredFields, sums, dates, crossTenant, duplicates},
    issues {missing, checksum_mismatch, relationship_errors, required_field_errors,
            sum_mismatches, date_mismatches, cross_tenant, duplicates, collisions, quarantined,
            unmapped, skipped_newer},
    ok (bool), records_missing (int), artifact.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from pydantic import BaseModel, Field

from engine.actions.analyze.legacy import EntitiesParams, entity_spec, open_index
from engine.actions.analyze.mapping import build_resolver
from engine.actions.validate.compare import Problems, validate_source, validate_target
from engine.aws import metrics
from engine.core.context import Action, ActionContext, NeedsAcceptance, PlannedCall
from engine.core.timetext import plan_span
from engine.runbook.model import Runbook
from engine.state.journal import Journal, StepState
from engine.state.records import Summary
from engine.state.resume import summary_of

NOT_BLOCKING = ("skipped_newer",)


class Performance(BaseModel):
    """The plan's `performance` block (section 9 validationResults)."""

    avgResponseTime: float = 0.0
    p99ResponseTime: float = 0.0
    p99Statistic: str = ""
    errorRate: float = 0.0
    invocations: int = 0
    windowMinutes: float = 0.0
    window: str = ""  # plan time and real time (engine/core/timetext.py)


class ValidationSummary(Summary):
    recordCounts: dict[str, dict[str, Any]] = {}
    dataIntegrity: dict[str, bool] = {}
    performance: Performance = Performance()
    issues: dict[str, int] = {}
    ok: bool = False
    records_missing: int = 0
    artifact: str = ""


def validation_of(state: StepState | None, where: str) -> ValidationSummary | None:
    """A validate_migration step's findings (None before it reported any)."""
    return summary_of(state, ValidationSummary, where)


def last_validation(rb: Runbook, journal: Journal) -> tuple[str, ValidationSummary] | None:
    """The latest finished validate_migration step of the runbook, and its findings."""
    found = None
    for step in rb.steps:
        state = journal.steps.get(step.id)
        if step.action == "validate_migration" and state and state.status == "done":
            summary = validation_of(state, f"steps.{step.id}.summary")
            found = (step.id, summary) if summary else found
    return found


class ValidateParams(EntitiesParams):
    performance_minutes: float = Field(default=60.0, gt=0)  # plan minutes of metrics to read
    segments: int = Field(default=4, ge=1, le=64)  # parallel-scan segments read at once
    # problems stop the run until a human accepts them (`runbook ack`); for the last check
    # before deletions, where no later gate would catch them
    require_acceptance: bool = False


def measure_performance(ctx: ActionContext, minutes: float) -> Performance:
    """The plan's `performance` block, from CloudWatch over the last `minutes` (informational:
    the gates judge error rate and latency with their own checks)."""
    rb = ctx.runbook
    cw = ctx.client("cloudwatch")
    win = metrics.window(minutes, ctx.clock.time_scale)
    functions = rb.flags.functions
    avg = metrics.latency(cw, functions, "Average", win)
    p99_stat = metrics.latency_statistic(rb, ctx.world.percentiles)
    p99 = metrics.latency(cw, functions, p99_stat, win)
    errors = metrics.error_rate(cw, functions, win)
    return Performance(
        avgResponseTime=round(sum(avg.values()) / len(avg), 1) if avg else 0.0,
        p99ResponseTime=round(max(p99.values()), 1) if p99 else 0.0,
        p99Statistic=p99_stat,  # moto has no percentiles: Average on the embedded target
        errorRate=round(errors.percent, 3),
        invocations=int(errors.invocations),
        windowMinutes=minutes,
        # the same words as the gates' evidence, status and the console ("60 plan min = 1 s")
        window="last " + plan_span(minutes, ctx.clock.time_scale, win.real_seconds),
    )


def run(ctx: ActionContext, p: ValidateParams) -> ValidationSummary:
    entities = [entity_spec(ctx.runbook, n) for n in p.entities]
    resolver = build_resolver(ctx)
    index = open_index(ctx)
    name = f"validation-{ctx.step_id}.jsonl"
    db_path = ctx.artifact(f"validation-{ctx.step_id}.sqlite")
    db_path.unlink(missing_ok=True)
    db = sqlite3.connect(db_path)
    db.execute("CREATE TABLE seen (id TEXT, user TEXT)")
    record_counts: dict[str, Any] = {}
    try:
        with ctx.artifact(name).open("w") as fh:
            problems = Problems(fh)
            for e in entities:
                record_counts[e.name] = validate_source(
                    ctx, e, resolver, index, problems, p.segments
                )
                validate_target(ctx, e, resolver, problems, db)
                ctx.checkpoint()
    finally:
        db.close()
        db_path.unlink(missing_ok=True)
        if index is not None:
            index.close()
    issues = problems.counts
    integrity = {
        "checksum": issues["checksum_mismatch"] == 0,
        "relationships": issues["relationship_errors"] == 0,
        "requiredFields": issues["required_field_errors"] == 0,
        "sums": issues["sum_mismatches"] == 0,
        "dates": issues["date_mismatches"] == 0,
        "crossTenant": issues["cross_tenant"] == 0,
        "duplicates": issues["duplicates"] == 0,
    }
    ok = all(v == 0 for k, v in issues.items() if k not in NOT_BLOCKING) and all(
        c["match"] for c in record_counts.values()
    )
    bad = {k: v for k, v in issues.items() if v and k not in NOT_BLOCKING}
    ctx.log(
        f"validation {'passed' if ok else 'FAILED'}"
        + (": " + ", ".join(f"{k}={v}" for k, v in bad.items()) if bad else "")
        + f" (details: {name})",
        "info" if ok else "error",
    )
    ctx.checkpoint(force=True)
    performance = measure_performance(ctx, p.performance_minutes)
    ctx.log(
        f"performance over the {performance.window}: error rate {performance.errorRate:g}%, "
        f"{performance.p99Statistic} {performance.p99ResponseTime:g} ms"
    )
    summary = ValidationSummary(
        recordCounts=record_counts,
        dataIntegrity=integrity,
        performance=performance,
        issues=dict(issues),
        ok=ok,
        records_missing=issues["missing"],
        artifact=name,
    )
    if p.require_acceptance and not ok:
        listed = ", ".join(f"{k}={v}" for k, v in bad.items()) or "record counts differ"
        raise NeedsAcceptance(
            f"validation found problems ({listed}; see {name}). The run waits here: fix them "
            f"and run again, or accept them with `runbook ack {ctx.step_id} --by NAME --note WHY`",
            summary,
        )
    return summary


def plan(rb: Runbook, p: ValidateParams) -> list[PlannedCall]:
    calls: list[PlannedCall] = []
    for n in p.entities:
        e = rb.find_entity(n)
        if e:
            calls.append(PlannedCall("dynamodb", "Scan", e.source, "read only"))
            calls.append(PlannedCall("dynamodb", "BatchGetItem", e.target, "per source page"))
            calls.append(PlannedCall("dynamodb", "Scan", e.target, "run's items: tenancy"))
    calls.append(
        PlannedCall(
            "cloudwatch",
            "GetMetricData",
            "AWS/Lambda Duration, Errors, Invocations",
            f"performance over the last {p.performance_minutes:g} plan min",
        )
    )
    return calls


ACTIONS = (
    Action(
        "validate_migration",
        ValidateParams,
        run,
        plan,
        "Counts, checksums, required fields, relations, sums, tenancy: source vs target",
        summary=ValidationSummary,
    ),
)
