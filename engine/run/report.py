"""`runbook report`: a Markdown audit of the run, with the plan's success criteria measured."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.actions.cleanup.state import DeleteFunctionsSummary, DeleteTablesSummary
from engine.actions.prepare.backup import backups_of
from engine.actions.traffic.watch import worst_error_rates
from engine.actions.validate.migration import ValidationSummary, last_validation
from engine.core.views import AlertView, ItemView
from engine.plan.loader import cross_check
from engine.run.engine import Engine
from engine.run.snapshot import alerts_of, archive_gaps
from engine.run.status_text import when
from engine.runbook.model import CostModel, Runbook
from engine.state.journal import Journal, StepState
from engine.state.resume import summary_of

Measure = float | int | None
Deleted = DeleteFunctionsSummary | DeleteTablesSummary


def _removed(engine: Engine, action: str, model: type[Deleted]) -> int | None:
    """How many resources the finished steps running `action` deleted (None: none finished)."""
    values = [
        len(summary.deleted)
        for step in engine.runbook.steps
        if step.action == action
        and (state := engine.journal.steps.get(step.id))
        and state.status == "done"
        and (summary := summary_of(state, model, f"steps.{step.id}.summary")) is not None
    ]
    return sum(values) if values else None


def monthly_cost(cost: CostModel, tables: int, functions: int, log_groups: int, apis: int) -> float:
    return (
        tables * cost.table_monthly
        + functions * cost.function_monthly
        + log_groups * cost.log_group_monthly
        + apis * cost.api_monthly
    )


def _paginate(client: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
    return [
        item for page in client.get_paginator(operation).paginate(**kwargs) for item in page[key]
    ]


def live_inventory(clients: Callable[[str], Any]) -> dict[str, int]:
    """Counts of what exists now on the target, for the after-cost."""
    return {
        "tables": len(_paginate(clients("dynamodb"), "list_tables", "TableNames")),
        "functions": len(_paginate(clients("lambda"), "list_functions", "Functions")),
        "log_groups": len(_paginate(clients("logs"), "describe_log_groups", "logGroups")),
        "apis": len(_paginate(clients("apigateway"), "get_rest_apis", "items")),
    }


def planned_inventory(rb: Runbook) -> dict[str, int]:
    inv = rb.inventory
    return {
        "tables": len(inv.tables),
        "functions": len(inv.functions),
        "log_groups": len(inv.log_groups()),
        "apis": 1 if inv.api else 0,
    }


def measures(engine: Engine, live: dict[str, int] | None) -> dict[str, Measure]:
    rb = engine.runbook
    validation = last_validation(rb, engine.journal)
    out: dict[str, Measure] = {
        "records_missing": _not_migrated(validation[1]) if validation else None,
        "functions_removed": _removed(engine, "delete_functions", DeleteFunctionsSummary),
        "tables_removed": _removed(engine, "delete_tables", DeleteTablesSummary),
        "error_rate_percent": _max_error_rate(engine),
        "cost_reduction_percent": None,
    }
    if rb.inventory.cost and live:
        before = monthly_cost(rb.inventory.cost, **planned_inventory(rb))
        after = monthly_cost(rb.inventory.cost, **live)
        out["cost_before"] = round(before, 2)
        out["cost_after"] = round(after, 2)
        out["cost_reduction_percent"] = (
            round(100 * (before - after) / before, 1) if before else None
        )
    return out


NOT_MIGRATED = ("missing", "collisions", "quarantined", "unmapped")


def _not_migrated(summary: ValidationSummary) -> int:
    """Legacy records with no company-scoped copy: lost, or held back (collisions, malformed,
    unmapped) even when an operator accepted that. Zero data loss means all of these are 0."""
    if not summary.issues:
        return summary.records_missing
    return sum(summary.issues.get(k, 0) for k in NOT_MIGRATED)


def _error_rate_alerts(engine: Engine) -> list[AlertView]:
    metric = {t.id: t.metric for t in engine.runbook.triggers}
    return [a for a in alerts_of(engine.journal) if metric.get(a.trigger) == "error_rate"]


def _max_error_rate(engine: Engine) -> float | None:
    """The worst error rate seen during the run: every watch window's worst (finished, or
    stopped with its figures in its cursors), and every error-rate alert that fired (a
    window that tripped a trigger never finishes, and a rollback clears its state)."""
    rates = worst_error_rates(engine.runbook, engine.journal)
    rates += [a.measured for a in _error_rate_alerts(engine)]
    return max(rates) if rates else None


def _meets(target: str, value: Measure) -> str:
    if value is None:
        return "not measured"
    text = target.strip()
    for op, test in (
        ("<=", float.__le__),
        (">=", float.__ge__),
        ("<", float.__lt__),
        (">", float.__gt__),
    ):
        if text.startswith(op):
            return "met" if test(float(value), float(text[len(op) :])) else "NOT met"
    try:
        return "met" if float(value) == float(text) else "NOT met"
    except ValueError:
        return "see value"


def markdown_list(value: dict[str, Any], depth: int = 0) -> list[str]:
    """Nested mappings as nested Markdown bullets (`- checksum: yes`), never a dict dump."""
    lines = []
    for key, item in sorted(value.items()):
        indent = "  " * depth
        if isinstance(item, dict) and item:
            lines.append(f"{indent}- {key}:")
            lines += markdown_list(item, depth + 1)
        elif isinstance(item, bool):
            lines.append(f"{indent}- {key}: {'yes' if item else 'no'}")
        elif isinstance(item, list):
            lines.append(f"{indent}- {key}: {', '.join(map(str, item)) or 'none'}")
        else:
            lines.append(f"{indent}- {key}: {item if item != {} else 'none'}")
    return lines


def _item_line(item: ItemView) -> str:
    """`[x] Text: ticked by alice at 2024-12-01 10:00 (note)`: the audit of who met what."""
    mark = {True: "x", False: " ", None: "?"}[item.ok]
    if item.kind == "manual" and item.ok and item.by:  # the name given, then who it was
        verified = f"; verified: {item.identity}" if item.identity else "; not verified"
        return f"[{mark}] {item.text}: ticked by {item.by} at {when(item.at)}{verified}"
    if item.kind == "manual":
        return f"[{mark}] {item.text}: {item.detail}"
    checked = f" (checked {when(item.at)})" if item.at else ""
    return f"[{mark}] {item.text}: {item.detail or 'not evaluated'}{checked}"


def render_report(engine: Engine, clients: Callable[[str], Any] | None) -> str:
    rb, journal = engine.runbook, engine.journal
    run = journal.run
    live = None
    if clients is not None:
        try:
            live = live_inventory(clients)
        except Exception as exc:  # an unreachable target still gets a journal-only report
            live = None
            engine.log(f"report: live inventory unavailable: {exc}", "warning")
    values = measures(engine, live)
    lines = [
        f"# Migration report: {rb.runbook.title}",
        "",
        f"- Runbook: `{run.runbook_id}` (sha256 `{run.runbook_sha256[:12]}`)",
        f"- Started by {run.operator} at {when(run.started_at)}; "
        f"migration timestamp {run.migration_ts}",
        f"- Target: {run.target.kind} `{run.target.identity}` ({run.target.region})",
        "",
        "## Success criteria (plan section 9)",
        "",
        "| criterion | target | measured | verdict |",
        "|---|---|---|---|",
    ]
    for crit in rb.success_criteria:
        value = values.get(crit.measure)
        shown = "n/a" if value is None else f"{value:g}"
        if crit.measure == "error_rate_percent" and value is not None:
            fired = _error_rate_alerts(engine)
            shown += " (worst seen during the run" + (
                f"; {len(fired)} alert(s) fired, see Alerts)" if fired else ")"
            )
        lines.append(f"| {crit.text} | {crit.target} | {shown} | {_meets(crit.target, value)} |")
    if "cost_before" in values:
        lines += [
            "",
            f"Monthly cost estimate (section 1 cost model): before "
            f"${values['cost_before']:.2f}, after ${values['cost_after']:.2f}.",
        ]
    validation = last_validation(rb, engine.journal)
    if validation and values.get("records_missing"):
        issues = validation[1].issues
        held = ", ".join(f"{k} {issues.get(k, 0)}" for k in NOT_MIGRATED)
        lines += ["", f"Records not migrated: {held} (artifacts beside the journal list them)."]
    conflicts = {
        step.id: int(state.summary.get("conflicts", 0))
        for step in rb.steps
        if step.action == "migrate_entity"
        and (state := journal.steps.get(step.id)) is not None
        and state.summary
    }
    backends = {
        step.id: str(state.summary.get("backend", "local"))
        for step in rb.steps
        if step.action == "migrate_entity"
        and (state := journal.steps.get(step.id)) is not None
        and state.summary
    }
    if backends:
        lines += [
            "",
            "Migration backends: "
            + ", ".join(
                f"{k} {v}"
                + (
                    f" (execution {journal.steps[k].summary.get('execution_arn')})"
                    if v == "step-functions"
                    else ""
                )
                for k, v in backends.items()
            )
            + ".",
        ]
    if conflicts:
        lines += [
            "",
            "Migration writes that met an application write in flight (TransactionConflict, "
            f"retried with backoff): {sum(conflicts.values())} ("
            + ", ".join(f"{k} {v}" for k, v in conflicts.items())
            + ").",
        ]
    if validation:
        lines += ["", f"## Validation ({validation[0]})", ""]
        shown = validation[1].model_dump(mode="json", exclude_none=True)
        lines += markdown_list(shown)
    lines += [
        "",
        "## Steps",
        "",
        "| day | slot | step | status | attempts | finished |",
        "|---|---|---|---|---|---|",
    ]
    for step in rb.steps:
        state = journal.steps.get(step.id) or StepState()
        day = rb.phase(step.phase).day
        lines.append(
            f"| {day} | {step.slot} | {step.id} | {state.status} | {state.attempts} "
            f"| {when(state.finished_at) if state.finished_at else ''} |"
        )
    lines += ["", "## Gates", ""]
    for gate in engine.snapshot().gates:  # the run's state as every view shows it
        decision = (
            f"{gate.decision} by {gate.by} at {when(gate.at)}" if gate.decision else ("undecided")
        )
        override = f" (override: {gate.override})" if gate.override else ""
        verified = f"; verified: {gate.identity}" if gate.decision and gate.identity else ""
        lines.append(f"- **{gate.title}**: {decision}{override}{verified}")
        if gate.min_approvals or gate.approver_not_operator:
            approvers = ", ".join(gate.approved_by) or "none"
            lines.append(f"  - distinct verified approvers: {approvers}")
        lines += [f"  - {_item_line(item)}" for item in gate.items]
    backups = [
        (table, entry.name)
        for step in rb.steps
        if step.action == "backup_tables"
        for table, entry in backups_of(journal, step.id).items()
    ]
    if backups:
        lines += [
            "",
            "## Backups kept",
            "",
            "On-demand backups are retained until deleted (the plan keeps them at least 30 days):",
            "",
        ]
        lines += [f"- {name}: {table}" for table, name in backups]
    if journal.rollbacks:
        lines += ["", "## Rollbacks", ""]
        lines += [
            f"- {r.id} ({r.phase}) by {r.by} at {when(r.started_at)}: {r.status}"
            + (f"; verified: {r.identity.text()}" if r.identity else "")
            for r in journal.rollbacks
        ]
    alerts = alerts_of(journal)
    if alerts:
        lines += [
            "",
            "## Alerts",
            "",
            "| at | trigger | step | measured | threshold | proposed rollback | message |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {when(a.at)} | {a.trigger} "
            f"| {a.step or '-'} | {a.measured:g} | {a.threshold:g} | {a.rollback or '-'} "
            f"| {a.message} |"
            for a in alerts
        ]
    gaps = archive_gaps(rb, journal)
    if gaps:
        lines += [
            "",
            "## Incomplete archives",
            "",
            "Deleted resources whose archive is incomplete; a rollback cannot bring back what "
            "was not archived:",
            "",
        ]
        lines += [f"- {gap}" for gap in gaps]
    warnings = engine_warnings(rb)
    if warnings:
        lines += ["", "## Plan discrepancies", ""] + [f"- {w}" for w in warnings]
    lines += notification_lines(rb, journal)
    lines += ["", "## Audit trail (latest 50)", ""]
    lines += [
        f"- {when(a.at)} {a.who}"
        + (f" [{a.principal}]" if a.principal else "")
        + f": {a.what}"
        for a in journal.audit[-50:]
    ]
    return "\n".join(lines) + "\n"


def notification_lines(rb: Runbook, journal: Journal) -> list[str]:
    """`[notify]`: how many went out, and each delivery that failed (never a URL)."""
    if rb.notify is None:
        return []
    record = journal.notifications
    lines = ["", "## Notifications", "", f"Sent {record.sent}, failed {record.failed}."]
    failures = record.failures()
    if failures:
        lines += ["", "Failed deliveries:", ""]
        lines += [
            f"- {when(d.at)} {d.event_id} ({d.kind}) to {d.target}, "
            f"{d.attempts} attempt(s): {d.error}"
            for d in failures
        ]
    return lines


def engine_warnings(rb: Runbook) -> list[str]:

    return [msg for sev, _, msg in cross_check(rb) if sev == "warning"]
