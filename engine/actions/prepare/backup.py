"""On-demand backups (pre-migration and final) and point-in-time recovery."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.aws.resend import create_once
from engine.core.context import Action, ActionContext, PlannedCall
from engine.runbook.model import Runbook
from engine.state.journal import Journal
from engine.state.records import Cursors, Record, Summary
from engine.state.resume import cursors_of

POLL_SECONDS = 2.0
MAX_WAIT_SECONDS = 3600.0


class BackupParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tables: list[str]
    name_prefix: str
    enable_pitr: bool = False
    pause_seconds: float = 0.0  # pacing between tables, to stay under control-plane limits


class BackupRecord(Record):
    """One table's on-demand backup, journaled before waiting for it (the ARN is applied)."""

    arn: str
    name: str
    status: str = "CREATING"
    size_bytes: int | None = None


class BackupCursors(Cursors):
    backups: dict[str, BackupRecord] = {}  # table -> its backup
    pitr: list[str] = []  # tables whose point-in-time recovery this step turned on


class BackupSummary(Summary):
    backups: int = 0
    reused: int = 0
    pitr_enabled: int = 0
    name: str = ""


def backups_of(journal: Journal, step_id: str) -> dict[str, BackupRecord]:
    """The backups a backup_tables step journaled, by table (empty if it never ran)."""
    cursors = cursors_of(journal, step_id, BackupCursors)
    return dict(cursors.backups) if cursors else {}


def resolve_tables(rb: Runbook, selectors: list[str]) -> list[str]:
    out: list[str] = []
    for selector in selectors:
        out += [t for t in rb.inventory.select_tables(selector) if t not in out]
    return out


def backup_name(prefix: str, date: str) -> str:
    return f"{prefix}-{date}"


def _find_backup(ddb: Any, table: str, name: str) -> str | None:
    """An existing backup of that name, so a resume never makes a second one."""
    kwargs: dict[str, Any] = {"TableName": table, "BackupType": "USER"}
    while True:
        page = ddb.list_backups(**kwargs)
        for summary in page.get("BackupSummaries", []):
            if summary["BackupName"] == name and summary["BackupStatus"] != "DELETED":
                return summary["BackupArn"]
        last = page.get("LastEvaluatedBackupArn")
        if not last:
            return None
        kwargs["ExclusiveStartBackupArn"] = last


def _create_backup(ddb: Any, table: str, name: str) -> str:
    """CreateBackup makes one more backup each time it is sent: an answer lost on the way is
    settled by looking for the backup by its name, never by sending it again."""
    return create_once(
        lambda: ddb.create_backup(TableName=table, BackupName=name)["BackupDetails"]["BackupArn"],
        lambda: _find_backup(ddb, table, name),
    )


def _wait_available(ctx: ActionContext, ddb: Any, arn: str) -> dict[str, Any]:
    waited = 0.0
    while True:
        desc = ddb.describe_backup(BackupArn=arn)["BackupDescription"]["BackupDetails"]
        status = desc["BackupStatus"]
        if status == "AVAILABLE":
            return desc
        if status == "DELETED" or waited > MAX_WAIT_SECONDS:
            raise RuntimeError(f"backup {arn} is {status} after {waited:.0f}s")
        ctx.clock.sleep_real(POLL_SECONDS)
        waited += POLL_SECONDS


def run(ctx: ActionContext, p: BackupParams) -> BackupSummary:
    ddb = ctx.client("dynamodb")
    tables = resolve_tables(ctx.runbook, p.tables)
    name = backup_name(p.name_prefix, ctx.migration_date)
    cursors = ctx.cursors_as(BackupCursors)
    backups, pitr = cursors.backups, cursors.pitr
    reused = 0
    for table in tables:
        ctx.clock.check()
        entry = backups.get(table)
        if entry and entry.status == "AVAILABLE" and (table in pitr or not p.enable_pitr):
            ctx.progress(table, 1, 1)
            continue
        ctx.progress(table, 0, 1)
        arn = entry.arn if entry else _find_backup(ddb, table, name)
        if arn:
            reused += 1
            ctx.log(f"{table}: reusing backup {name}")
        else:
            arn = _create_backup(ddb, table, name)
            ctx.log(f"{table}: created backup {name}")
        backups[table] = BackupRecord(arn=arn, name=name)
        ctx.checkpoint(force=True)  # the ARN is applied state: journal it before waiting
        details = _wait_available(ctx, ddb, arn)
        backups[table] = BackupRecord(
            arn=arn,
            name=name,
            status=details["BackupStatus"],
            size_bytes=int(details.get("BackupSizeBytes", 0)),
        )
        if p.enable_pitr and table not in pitr:
            ddb.update_continuous_backups(
                TableName=table,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
            pitr.append(table)
            ctx.log(f"{table}: point-in-time recovery enabled")
        ctx.progress(table, 1, 1)
        ctx.checkpoint(force=True)
        if p.pause_seconds:
            ctx.clock.sleep_real(p.pause_seconds)
    return BackupSummary(backups=len(backups), reused=reused, pitr_enabled=len(pitr), name=name)


def plan(rb: Runbook, p: BackupParams) -> list[PlannedCall]:
    calls: list[PlannedCall] = []
    for table in resolve_tables(rb, p.tables):
        name = backup_name(p.name_prefix, "<migration-date>")
        calls.append(PlannedCall("dynamodb", "create_backup", table, f"BackupName={name}"))
        calls.append(PlannedCall("dynamodb", "describe_backup", table, "wait for AVAILABLE"))
        if p.enable_pitr:
            calls.append(PlannedCall("dynamodb", "update_continuous_backups", table, "PITR on"))
    return calls


ACTIONS = (
    Action(
        "backup_tables",
        BackupParams,
        run,
        plan,
        "On-demand backup of each table, verified AVAILABLE; optional PITR.",
        cursors=BackupCursors,
        summary=BackupSummary,
    ),
)
