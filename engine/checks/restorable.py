"""Gate check before Phase 5: what a rollback of the cleanup could not bring back as it was.

From Day 1's inventory artifact (engine/actions/prepare/legacy_inventory.py): the deprecated
functions on a runtime AWS now blocks creates on (each comes back on the replacement the
rollback's restore_functions step names, or the item fails and names the missing one), and
the event source mappings that read a legacy table's stream (a restore re-points them at the
restored table's new stream: listed, never failing)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.core.context import ActionContext, Check, CheckResult
from engine.runbook import runtimes


class RestorableParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inventory_step: str
    rollback: str


def _inventory(ctx: ActionContext, step: str) -> dict[str, Any] | None:
    state = ctx.journal.steps.get(step)
    name = (state.summary or {}).get("artifact") if state else None
    if not name or not ctx.artifact(name).exists():
        return None
    return dict(json.loads(ctx.artifact(name).read_text()))


def _replacements(ctx: ActionContext, rollback_id: str) -> dict[str, str]:
    rollback = ctx.runbook.find_rollback(rollback_id)
    steps = rollback.steps if rollback else []
    step = next((s for s in steps if s.action == "restore_functions"), None)
    return dict(step.params.get("replacement_runtimes", {})) if step else {}


def evaluate(ctx: ActionContext, p: RestorableParams) -> CheckResult:
    found = _inventory(ctx, p.inventory_step)
    if found is None:
        return CheckResult(False, f"no inventory artifact from step {p.inventory_step}")
    if "deprecated_functions" not in found:
        return CheckResult(
            False,
            f"the inventory of {p.inventory_step} predates the runtime and stream report; "
            f"run `runbook run --only {p.inventory_step}` again",
        )
    today = datetime.now(UTC).date()
    replacements = _replacements(ctx, p.rollback)
    changed: list[str] = []
    missing: list[str] = []
    for fn, entry in sorted((found.get("deprecated_functions") or {}).items()):
        runtime = entry.get("runtime", "")
        if not runtimes.blocks_create(ctx.runbook.lambda_runtimes, runtime, today):
            continue
        if replacements.get(runtime):
            changed.append(f"{fn}: {runtime} -> {replacements[runtime]}")
        else:
            missing.append(f"{fn}: {runtime}")
    mappings = [
        f"{m['function']} <- {m['table']} stream" for m in found.get("legacy_stream_mappings") or []
    ]
    data = {"runtime_changes": changed, "blocked": missing, "stream_mappings": mappings}
    parts = []
    if missing:
        parts.append(
            f"{len(missing)} function(s) on a runtime AWS blocks creates on, no replacement "
            f"named in {p.rollback}: " + "; ".join(missing[:5])
        )
    if changed:
        parts.append(
            f"{len(changed)} would come back on another runtime: " + "; ".join(changed[:5])
        )
    if mappings:
        parts.append(
            f"{len(mappings)} mapping(s) read a legacy stream (re-pointed by a restore): "
            + "; ".join(mappings[:5])
        )
    detail = ". ".join(parts) or "every deprecated function can come back as it was"
    return CheckResult(not missing, detail, data)


CHECKS = (
    Check(
        "restorable_as_they_were",
        RestorableParams,
        evaluate,
        "What a rollback of the cleanup could not bring back as it was (runtimes AWS blocks, "
        "legacy stream mappings).",
    ),
)
