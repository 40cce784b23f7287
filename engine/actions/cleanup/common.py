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
    return ctx.journal.run.target.kind != "aws"
