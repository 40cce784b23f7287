"""shift_reads: shift a share of reads to the company-scoped tables (a flag change), then a
watch window; its cursors hold both resumes (FlagCursors and WatchCursors)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from engine.actions.traffic.flags import (
    FlagCursors,
    FlagsSummary,
    apply_flags,
    plan_flag_calls,
    resolve_functions,
)
from engine.actions.traffic.watch import WatchCursors, WatchSummary, select_triggers, watch
from engine.core.context import Action, ActionContext, PlannedCall
from engine.runbook.model import Runbook


class ShiftCursors(FlagCursors, WatchCursors):
    """shift_reads: its flag change, then its watch window."""


class ShiftSummary(WatchSummary):
    percent: int = 0
    functions: int = 0
    changed: int = 0


class ShiftParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    percent: int = Field(ge=0, le=100)
    watch_minutes: float = Field(ge=0)
    triggers: list[str] | None = None
    functions: list[str] | None = None
    missing_is_inconsistent: bool = False
    auto_rollback: bool | None = None  # None: each trigger's own setting


def run_shift(ctx: ActionContext, p: ShiftParams) -> ShiftSummary:
    flags = ctx.runbook.flags
    values = {flags.read_company_scoped: "true", flags.read_percent: str(p.percent)}
    cursors = ctx.cursors_as(ShiftCursors)
    shifted: FlagsSummary = apply_flags(
        ctx, cursors, resolve_functions(ctx.runbook, p.functions), values
    )
    watched = WatchSummary()
    if p.watch_minutes > 0:
        triggers = select_triggers(ctx.runbook, p.triggers)
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
    values = {rb.flags.read_company_scoped: "true", rb.flags.read_percent: str(p.percent)}
    calls = plan_flag_calls(rb, resolve_functions(rb, p.functions), values)
    return [
        *calls,
        PlannedCall("cloudwatch", "GetMetricData", "AWS/Lambda", f"watch {p.watch_minutes:g} min"),
    ]


ACTIONS = (
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
)
