"""Re-point what read a deleted table's stream at the restored table's new stream.

DeleteTable disables a table's stream, and a restored table gets a new stream ARN: a mapping
that read the old stream (its function kept, so the mapping outlived the table) reads nothing.
EventSourceArn cannot be changed on a mapping, so a restore creates the same mapping on the
new stream, then deletes the old one; one already on the new stream (a resume, or made again
by someone) is compared with the archive and updated where it differs
(restore/existing_links.py). Mappings already deleted (their function was deleted
too, by delete_functions) are left to restore_functions, which creates them from its archive."""

from __future__ import annotations

import contextlib
from typing import Any

from engine.actions.restore.existing_links import sync_mapping
from engine.actions.restore.function_links import (
    current_source,
    find_mapping,
    mapping_request,
)
from engine.actions.traffic.flags import retry_conflicts
from engine.aws.resend import create_once
from engine.core.context import ActionContext


def _still_there(lam: Any, uuid: str) -> bool:
    try:
        lam.get_event_source_mapping(UUID=uuid)
    except lam.exceptions.ResourceNotFoundException:
        return False
    return True


def repoint_stream_mappings(
    ctx: ActionContext, table: str, record: dict[str, Any], done: dict[str, str]
) -> None:
    """Each archived mapping of the table's old stream, on its new one (`done`: old UUID ->
    new, updated in place and checkpointed)."""
    lam = ctx.client("lambda")
    ddb = ctx.client("dynamodb")
    for m in record.get("stream_mappings", []):
        old = m["UUID"]
        if old in done:
            continue
        if not _still_there(lam, old):
            continue  # deleted with its function: restore_functions brings it back
        source = current_source(ddb, m["EventSourceArn"])
        target = m["FunctionArn"]
        request = mapping_request(m, target, source)
        found = find_mapping(lam, source, target)
        what = f"{table}: {target}"
        made = (found and sync_mapping(ctx, lam, m, found, what)) or create_once(
            lambda kw=request: retry_conflicts(
                ctx, lam, f"{table}: stream mapping", lambda: lam.create_event_source_mapping(**kw)
            ),
            lambda s=source, t=target: find_mapping(lam, s, t),
        )
        if made["UUID"] != old:
            with contextlib.suppress(lam.exceptions.ResourceNotFoundException):
                lam.delete_event_source_mapping(UUID=old)
        done[old] = made["UUID"]
        ctx.log(f"{table}: {target} reads the new stream {source} (was {m['EventSourceArn']})")
        ctx.checkpoint(force=True)
