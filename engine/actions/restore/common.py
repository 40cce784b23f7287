"""What the Phase 5 restores (restore_tables, restore_functions, restore_routes) share: where
the delete step's archive is, and how long AWS may answer "not yet" after a restore or create.

Each restore reads what its delete step journaled (engine/actions/cleanup_*.py) and is
resumable: resources already back count as restored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.core.context import ActionContext

MAX_SETTLE_SECONDS = 900.0  # how long AWS may answer "not yet" after a restore or create
MAX_BACKOFF_SECONDS = 30.0


def archive_folder(ctx: ActionContext, archive_dir: str | None, step_id: str) -> Path:
    """The archive folder a delete step journaled (its default name before it journaled one)."""
    return ctx.artifacts_dir / (archive_dir or f"archive-{step_id}")


def retry_not_yet(
    ctx: ActionContext, what: str, call: Any, retry_on: tuple[type[Exception], ...]
) -> Any:
    """Call, retrying `retry_on` (AWS: "not yet") with backoff up to MAX_SETTLE_SECONDS."""
    waited = 0.0
    attempt = 0
    while True:
        try:
            return call()
        except retry_on as exc:
            if waited >= MAX_SETTLE_SECONDS:
                raise RuntimeError(f"{what}: still refused after {waited:.0f}s: {exc}") from exc
            delay = min(MAX_BACKOFF_SECONDS, 1.0 * 2**attempt)
            ctx.clock.sleep_real(delay)
            waited += delay
            attempt += 1
