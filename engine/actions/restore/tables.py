"""restore_tables: the tables a delete_tables step deleted, from their final backups, with what
a backup does not carry (deletion protection, stream, tags, TTL, PITR) from the archive.

cursors `restored` (names); summary {restored, from_backups}.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from engine.actions.cleanup.common import safe_name
from engine.actions.cleanup.state import table_deletions_of
from engine.actions.cleanup.tables import wait_table
from engine.actions.prepare.backup import backups_of
from engine.actions.restore.common import archive_folder, retry_not_yet
from engine.actions.restore.stream_mappings import repoint_stream_mappings
from engine.aws.resend import create_once
from engine.aws.tags import user_tag_list
from engine.core.context import Action, ActionContext, PlannedCall
from engine.runbook.model import Runbook
from engine.state.records import Cursors, Summary


class RestoreTablesCursors(Cursors):
    restored: list[str] = []
    repointed: dict[str, str] = {}  # a mapping of an old stream's UUID -> the new stream's


class RestoreTablesSummary(Summary):
    restored: list[str] = []
    from_backups: int = 0
    mappings_repointed: int = 0


class RestoreTablesParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backup_step: str
    delete_step: str


def run_restore_tables(ctx: ActionContext, p: RestoreTablesParams) -> RestoreTablesSummary:
    ddb = ctx.client("dynamodb")
    deletions = table_deletions_of(ctx.journal, p.delete_step)
    deleted = list(deletions.deleted)
    arns = dict(deletions.backups)
    for table, entry in backups_of(ctx.journal, p.backup_step).items():
        arns.setdefault(table, entry.arn)
    protected = set(deletions.protection_disabled)
    folder = archive_folder(ctx, deletions.archive_dir, p.delete_step)
    c = ctx.cursors_as(RestoreTablesCursors)
    restored = c.restored
    for index, table in enumerate(deleted):
        ctx.clock.check()
        if table in restored:
            continue
        try:
            ddb.describe_table(TableName=table)
            exists = True
        except ddb.exceptions.ResourceNotFoundException:
            exists = False
        if not exists:
            if not arns.get(table):
                raise RuntimeError(f"{table}: no backup ARN journaled; cannot restore")
            _restore_from_backup(ddb, table, arns[table])
            ctx.log(f"{table}: restoring from {arns[table]}")
            ctx.checkpoint(force=True)
        wait_table(ctx, ddb, table, gone=False)
        record = _restore_table_settings(ctx, ddb, table, folder, table in protected)
        repoint_stream_mappings(ctx, table, record, c.repointed)
        restored.append(table)
        ctx.progress("tables", index + 1, len(deleted))
        ctx.checkpoint(force=True)
    return RestoreTablesSummary(
        restored=list(restored), from_backups=len(restored), mappings_repointed=len(c.repointed)
    )


def _restore_from_backup(ddb: Any, table: str, arn: str) -> None:
    """RestoreTableFromBackup, once: after a lost answer the table restoring from that backup
    is ours (sent again, it would fail as TableAlreadyExists)."""

    def restoring() -> str | None:
        try:
            described = ddb.describe_table(TableName=table)["Table"]
        except ddb.exceptions.ResourceNotFoundException:
            return None
        source = (described.get("RestoreSummary") or {}).get("SourceBackupArn")
        return table if source == arn else None

    create_once(
        lambda: ddb.restore_table_from_backup(TargetTableName=table, BackupArn=arn), restoring
    )


def _update_table(
    ctx: ActionContext,
    ddb: Any,
    table: str,
    applied: Callable[[dict[str, Any]], bool] | None = None,
    **kwargs: Any,
) -> None:
    """UpdateTable once the table is ACTIVE, and wait for it to be ACTIVE again. `applied`
    tells from the table's description that an earlier request took: an answer lost after
    AWS applied it is sent again, and enabling a stream twice is refused ("Cannot enable
    stream", or "already has an enabled stream"), which then means done."""

    def update() -> Any:
        try:
            return ddb.update_table(TableName=table, **kwargs)
        except (ddb.exceptions.ResourceInUseException, ClientError) as exc:
            if applied is not None and applied(ddb.describe_table(TableName=table)["Table"]):
                return None
            raise exc

    wait_table(ctx, ddb, table, gone=False)
    retry_not_yet(ctx, f"{table}: update table", update, (ddb.exceptions.ResourceInUseException,))
    wait_table(ctx, ddb, table, gone=False)


def _enable_ttl(ddb: Any, table: str, attribute: str) -> None:
    """UpdateTimeToLive; refused as "already enabled" after an answer lost once AWS applied
    it (sent again), which then means done."""
    try:
        ddb.update_time_to_live(
            TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute}
        )
    except ClientError as exc:
        live = ddb.describe_time_to_live(TableName=table).get("TimeToLiveDescription", {})
        if live.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            raise exc


def _restore_table_settings(
    ctx: ActionContext, ddb: Any, table: str, folder: Path, protect: bool
) -> dict[str, Any]:
    """What a backup does not carry, from the archive the delete step wrote: deletion
    protection, stream, tags, TTL, PITR. Each is compared with the table first, so a re-run
    after a crash changes nothing twice (AWS refuses to enable TTL or a stream twice)."""
    desc = ddb.describe_table(TableName=table)["Table"]
    if protect and not desc.get("DeletionProtectionEnabled"):
        _update_table(ctx, ddb, table, DeletionProtectionEnabled=True)
    path = folder / f"{safe_name(table)}.table.json"
    if not path.exists():
        ctx.log(f"{table}: no settings archive; tags, TTL, stream and PITR not restored", "warning")
        return {}
    record = json.loads(path.read_text())
    stream = record.get("stream") or record.get("table", {}).get("StreamSpecification") or {}
    live_stream = desc.get("StreamSpecification") or {}
    if stream.get("StreamEnabled") and not live_stream.get("StreamEnabled"):
        spec = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
        _update_table(
            ctx,
            ddb,
            table,
            applied=lambda d: bool((d.get("StreamSpecification") or {}).get("StreamEnabled")),
            StreamSpecification=spec,
        )
        ctx.log(f"{table}: stream re-enabled ({stream['StreamViewType']})")
    tags, reserved = user_tag_list(record.get("tags"))
    if tags:
        ddb.tag_resource(ResourceArn=desc["TableArn"], Tags=tags)
    if reserved:
        ctx.log(
            f"{table}: tags {', '.join(reserved)} are set by AWS (CloudFormation), not restored"
        )
    ttl = record.get("ttl", {}).get("TimeToLiveDescription", {})
    if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") and ttl.get("AttributeName"):
        live_ttl = ddb.describe_time_to_live(TableName=table).get("TimeToLiveDescription", {})
        if live_ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            retry_not_yet(
                ctx,
                f"{table}: TTL",
                lambda: _enable_ttl(ddb, table, ttl["AttributeName"]),
                (ddb.exceptions.ResourceInUseException,),
            )
    pitr = (
        record.get("continuous_backups", {})
        .get("ContinuousBackupsDescription", {})
        .get("PointInTimeRecoveryDescription", {})
    )
    if pitr.get("PointInTimeRecoveryStatus") == "ENABLED":
        # right after a restore AWS answers ContinuousBackupsUnavailableException for a while
        retry_not_yet(
            ctx,
            f"{table}: point-in-time recovery",
            lambda: ddb.update_continuous_backups(
                TableName=table,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            ),
            (ddb.exceptions.ContinuousBackupsUnavailableException,),
        )
    return record


def plan_restore_tables(rb: Runbook, p: RestoreTablesParams) -> list[PlannedCall]:
    what = f"tables {p.delete_step} deleted"
    return [
        PlannedCall("dynamodb", "RestoreTableFromBackup", what, f"backups of {p.backup_step}"),
        PlannedCall(
            "lambda",
            "CreateEventSourceMapping",
            what,
            "the kept readers of a legacy stream, on the new stream (the old mapping deleted)",
        ),
    ]


ACTIONS = (
    Action(
        "restore_tables",
        RestoreTablesParams,
        run_restore_tables,
        plan_restore_tables,
        "Restore the tables a delete step deleted from their final backups",
        cursors=RestoreTablesCursors,
        summary=RestoreTablesSummary,
    ),
)
