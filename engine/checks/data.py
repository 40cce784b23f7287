"""Gate checks on the data steps' journaled results: analysis_clean and validation_passed."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.context import ActionContext, Check, CheckResult

QUARANTINE = "quarantine.jsonl"  # analyze_legacy's artifact


class StepParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    step: str


def _summary(ctx: ActionContext, step: str) -> tuple[dict[str, Any] | None, str]:
    state = ctx.journal.steps.get(step)
    if state is None or state.status != "done":
        status = state.status if state else "pending"
        return None, f"step {step} is not done ({status})"
    return state.summary, ""


def analysis_clean(ctx: ActionContext, p: StepParams) -> CheckResult:
    summary, why = _summary(ctx, p.step)
    if summary is None:
        return CheckResult(False, why)
    data = {
        k: summary.get(k, 0)
        for k in ("items", "orphans", "collisions", "malformed", "unfit_for_target", "unmapped")
    }
    artifacts = summary.get("artifacts", ["collisions.jsonl"])
    where = f"{ctx.artifacts_dir}/{artifacts[0]}"
    if summary.get("collisions", 0) or summary.get("unmapped", 0):
        return CheckResult(
            False,
            f"{summary.get('collisions', 0)} colliding legacy items, "
            f"{summary.get('unmapped', 0)} unmapped: resolve them (see {where})",
            data,
        )
    detail = (
        f"{data['items']} items analysed, no collisions; {data['orphans']} orphan user(s), "
        f"{data['malformed']} malformed item(s) and {data['unfit_for_target']} the target "
        f"cannot hold to quarantine (see {ctx.artifacts_dir}/{QUARANTINE})"
    )
    return CheckResult(True, detail, data)


def validation_passed(ctx: ActionContext, p: StepParams) -> CheckResult:
    summary, why = _summary(ctx, p.step)
    if summary is None:
        return CheckResult(False, why)
    issues = {k: v for k, v in summary.get("issues", {}).items() if v}
    data = {"records_missing": summary.get("records_missing", -1), "issues": issues}
    artifact = f"{ctx.artifacts_dir}/{summary.get('artifact', '')}"
    if not summary.get("ok"):
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
