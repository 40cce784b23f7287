"""delete_tables: delete legacy tables whose final backup is AVAILABLE (deletion protection
off first), with what a backup does not carry archived; and the table wait restore_tables shares.

cursors `deleted` (names), `already_absent`, `backups` ({table: backup arn}),
`protection_disabled` (names), `archive_dir`; summary {deleted, already_absent,
protection_disabled}. Backups are kept.
"""

from __future__ import annotations

import contextlib
from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.actions.cleanup.common import archive_dir, safe_name, strip_metadata, write_json
from engine.actions.cleanup.state import DeleteTablesCursors, DeleteTablesSummary
from engine.actions.destructive import Refused, require_go
from engine.actions.prepare.backup import backups_of
from engine.aws.event_source_mappings import MAPPING_KEYS
from engine.core.context import Action, ActionContext, PlannedCall
from engine.runbook.model import Runbook

POLL_SECONDS = 2.0
MAX_WAIT_SECONDS = 1800.0


class DeleteTablesParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tables: list[str]
    backup_step: str


def resolve_tables(rb: Runbook, selectors: list[str]) -> list[str]:
    out: list[str] = []
    for selector in selectors:
        out += [t for t in rb.inventory.select_tables(selector) if t not in out]
    return out


def final_backup(ctx: ActionContext, backup_step: str, table: str) -> str:
    """The AVAILABLE backup of `table` the backup step journaled (checked live), or Refused."""
    entry = backups_of(ctx.journal, backup_step).get(table)
    if not entry or not entry.arn:
        raise Refused(f"{table}: no final backup journaled by {backup_step}; not deleted")
    ddb = ctx.client("dynamodb")
    try:
        desc = ddb.describe_backup(BackupArn=entry.arn)["BackupDescription"]
    except ddb.exceptions.BackupNotFoundException as exc:
        raise Refused(f"{table}: backup {entry.arn} not found; not deleted") from exc
    status = desc["BackupDetails"]["BackupStatus"]
    source = desc.get("SourceTableDetails", {}).get("TableName", table)
    if status != "AVAILABLE" or source != table:
        raise Refused(f"{table}: final backup is {status} (of {source}); not deleted")
    return entry.arn


def wait_table(ctx: ActionContext, ddb: Any, table: str, gone: bool) -> None:
    waited = 0.0
    while waited <= MAX_WAIT_SECONDS:
        try:
            status = ddb.describe_table(TableName=table)["Table"]["TableStatus"]
        except ddb.exceptions.ResourceNotFoundException:
            if gone:
                return
            status = "MISSING"
        if not gone and status == "ACTIVE":
            return
        ctx.clock.sleep_real(POLL_SECONDS)
        waited += POLL_SECONDS
    raise RuntimeError(f"{table}: still not {'deleted' if gone else 'ACTIVE'} after {waited:.0f}s")


def list_tags(ddb: Any, arn: str) -> list[dict[str, str]]:
    tags: list[dict[str, str]] = []
    kwargs: dict[str, Any] = {"ResourceArn": arn}
    while True:
        page = ddb.list_tags_of_resource(**kwargs)
        tags += page.get("Tags", [])
        if not page.get("NextToken"):
            return tags
        kwargs["NextToken"] = page["NextToken"]


def stream_mappings(ctx: ActionContext, desc: dict[str, Any]) -> list[dict[str, Any]]:
    """The event source mappings that read the table's stream (its functions may be kept)."""
    arn = desc.get("LatestStreamArn")
    if not arn:
        return []
    lam = ctx.client("lambda")
    found: list[dict[str, Any]] = []
    for page in lam.get_paginator("list_event_source_mappings").paginate(EventSourceArn=arn):
        found += [{k: m[k] for k in MAPPING_KEYS if k in m} for m in page["EventSourceMappings"]]
    return found


def _exists(ddb: Any, table: str) -> bool:
    try:
        ddb.describe_table(TableName=table)
        return True
    except ddb.exceptions.ResourceNotFoundException:
        return False


def run_delete_tables(ctx: ActionContext, p: DeleteTablesParams) -> DeleteTablesSummary:
    require_go(ctx)
    ddb = ctx.client("dynamodb")
    folder = archive_dir(ctx)
    c = ctx.cursors_as(DeleteTablesCursors)
    c.archive_dir = folder.name
    deleted, absent, backups = c.deleted, c.already_absent, c.backups
    unprotected = c.protection_disabled
    tables = resolve_tables(ctx.runbook, p.tables)
    # every final backup is checked before the first deletion: all or nothing is refused
    for table in tables:
        if table not in deleted and table not in absent and _exists(ddb, table):
            final_backup(ctx, p.backup_step, table)
    for index, table in enumerate(tables):
        ctx.clock.check()
        if table in deleted or table in absent:
            continue
        try:
            desc = ddb.describe_table(TableName=table)["Table"]
        except ddb.exceptions.ResourceNotFoundException:
            (deleted if table in backups else absent).append(table)
            ctx.checkpoint(force=True)
            continue
        backups[table] = final_backup(ctx, p.backup_step, table)  # refuses without one
        # what a backup does not carry (tags, TTL, streams, PITR), archived before the deletion:
        # a failure to read them stops here, before anything is lost
        record: dict[str, Any] = {
            "table": desc,
            "backup_arn": backups[table],
            "ttl": strip_metadata(ddb.describe_time_to_live(TableName=table)),
            "continuous_backups": strip_metadata(ddb.describe_continuous_backups(TableName=table)),
            "tags": list_tags(ddb, desc["TableArn"]),
            "stream": desc.get("StreamSpecification", {}),
            # DeleteTable disables the stream; what reads it is re-pointed by a restore
            "stream_arn": desc.get("LatestStreamArn", ""),
            "stream_mappings": stream_mappings(ctx, desc),
        }
        write_json(folder / f"{safe_name(table)}.table.json", record)
        ctx.checkpoint(force=True)
        if desc.get("DeletionProtectionEnabled"):
            ddb.update_table(TableName=table, DeletionProtectionEnabled=False)
            if table not in unprotected:
                unprotected.append(table)
            ctx.log(f"{table}: deletion protection turned off (final backup AVAILABLE, GO)")
            ctx.checkpoint(force=True)
            wait_table(ctx, ddb, table, gone=False)
        with contextlib.suppress(ddb.exceptions.ResourceNotFoundException):
            ddb.delete_table(TableName=table)
        deleted.append(table)
        ctx.checkpoint(force=True)
        wait_table(ctx, ddb, table, gone=True)
        ctx.log(f"deleted table {table}; backup kept: {backups[table]}")
        ctx.progress("tables", index + 1, len(tables))
    return DeleteTablesSummary(
        deleted=list(deleted), already_absent=list(absent), protection_disabled=list(unprotected)
    )


def plan_delete_tables(rb: Runbook, p: DeleteTablesParams) -> list[PlannedCall]:
    calls = []
    for t in resolve_tables(rb, p.tables):
        calls.append(
            PlannedCall(
                "dynamodb",
                "DescribeBackup",
                t,
                f"final backup from {p.backup_step} must be AVAILABLE",
            )
        )
        calls.append(PlannedCall("dynamodb", "DeleteTable", t))
    return calls


ACTIONS = (
    Action(
        "delete_tables",
        DeleteTablesParams,
        run_delete_tables,
        plan_delete_tables,
        "Delete tables whose final backup is AVAILABLE (deletion protection off first)",
        cursors=DeleteTablesCursors,
        summary=DeleteTablesSummary,
    ),
)
