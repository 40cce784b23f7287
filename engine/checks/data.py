"""Gate checks on the data steps' journaled results: analysis_clean and validation_passed."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from engine.actions.analyze.legacy import AnalyzeSummary
from engine.actions.validate.migration import validation_of
from engine.core.context import ActionContext, Check, CheckResult
from engine.state.journal import StepState
from engine.state.resume import summary_of

QUARANTINE = "quarantine.jsonl"  # analyze_legacy's artifact


class StepParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    step: str


def _done(ctx: ActionContext, step: str) -> tuple[StepState | None, str]:
    state = ctx.journal.steps.get(step)
    if state is None or state.status != "done":
        status = state.status if state else "pending"
        return None, f"step {step} is not done ({status})"
    return state, ""


def analysis_clean(ctx: ActionContext, p: StepParams) -> CheckResult:
    state, why = _done(ctx, p.step)
    summary = summary_of(state, AnalyzeSummary, f"steps.{p.step}.summary") if state else None
    if state is None:
        return CheckResult(False, why)
    summary = summary or AnalyzeSummary()
    data = summary.model_dump(
        include={"items", "orphans", "collisions", "malformed", "unfit_for_target", "unmapped"}
    )
    where = f"{ctx.artifacts_dir}/{(summary.artifacts or ['collisions.jsonl'])[0]}"
    if summary.collisions or summary.unmapped:
        return CheckResult(
            False,
            f"{summary.collisions} colliding legacy items, "
            f"{summary.unmapped} unmapped: resolve them (see {where})",
            data,
        )
    detail = (
        f"{summary.items} items analysed, no collisions; {summary.orphans} orphan user(s), "
        f"{summary.malformed} malformed item(s) and {summary.unfit_for_target} the target "
        f"cannot hold to quarantine (see {ctx.artifacts_dir}/{QUARANTINE})"
    )
    return CheckResult(True, detail, data)


def validation_passed(ctx: ActionContext, p: StepParams) -> CheckResult:
    state, why = _done(ctx, p.step)
    if state is None:
        return CheckResult(False, why)
    summary = validation_of(state, f"steps.{p.step}.summary")
    if summary is None:
        return CheckResult(False, f"step {p.step} reported no validation", {})
    issues = {k: v for k, v in summary.issues.items() if v}
    data = {"records_missing": summary.records_missing, "issues": issues}
    artifact = f"{ctx.artifacts_dir}/{summary.artifact}"
    if not summary.ok:
        listed = ", ".join(f"{k}={v}" for k, v in sorted(issues.items())) or "counts differ"
        return CheckResult(False, f"validation of {p.step} failed: {listed} (see {artifact})", data)
    return CheckResult(True, f"validation of {p.step} passed (records missing: 0)", data)


CHECKS = (
    Check(
        "analysis_clean",
        StepParams,
        analysis_clean,
        "The analysis step is done and found no collisions (or unmapped users).",
    ),
    Check(
        "validation_passed",
        StepParams,
        validation_passed,
        "The validation step is done and its summary is ok.",
    ),
)
