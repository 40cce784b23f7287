"""What the Phase 5 deletions (cleanup_functions, cleanup_routes, cleanup_tables) share: the
GO gate they require, and the archive beside the journal that the restores (restore_*.py) read.

Every deletion is refused unless the gate the step requires is GO (the runner enforces
`requires_gate` too). Before each deletion, what is needed to bring the resource back is
archived beside the journal (`<journal>.artifacts/archive-<step>/`). Already-deleted resources
count as done. Their resume state and summaries: engine/actions/cleanup/state.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.core.context import ActionContext


class Refused(RuntimeError):
    """A destructive action's precondition does not hold; nothing was deleted."""


def require_go(ctx: ActionContext) -> str:
    """The step's required gate must be GO; a destructive step without one is refused."""
    step = next((s for s in ctx.runbook.steps if s.id == ctx.step_id), None)
    gate_id = step.requires_gate if step else None
    if not gate_id:
        raise Refused(f"{ctx.step_id}: a deletion needs a step with requires_gate; refused")
    if not ctx.gate_is_go(gate_id):
        decision = ctx.journal.gate(gate_id).decision or "undecided"
        raise Refused(f"{ctx.step_id}: gate {gate_id} is {decision}, not GO; nothing deleted")
    return gate_id


def archive_dir(ctx: ActionContext, step_id: str | None = None) -> Path:
    """The step's archive folder beside the journal, created if missing."""
    path = ctx.artifact(f"archive-{step_id or ctx.step_id}")
    path.mkdir(parents=True, exist_ok=True)
    return path


def safe_name(name: str) -> str:
    """A resource name as an archive file name (no slashes)."""
    return name.strip("/").replace("/", "__")


def strip_metadata(response: dict[str, Any]) -> dict[str, Any]:
    """A boto3 response as archived: without its ResponseMetadata."""
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))


def is_rehearsal(ctx: ActionContext) -> bool:
    """The embedded world or an --endpoint-url target: not AWS."""
    return ctx.is_embedded or ctx.journal.run.target.kind != "aws"
