"""Gate check: every backup a step journaled is AVAILABLE on the target right now."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from engine.actions.prepare.backup import backups_of
from engine.core.context import ActionContext, Check, CheckResult


class BackupsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    step: str


def evaluate(ctx: ActionContext, p: BackupsParams) -> CheckResult:
    state = ctx.journal.steps.get(p.step)
    if state is None or state.status != "done":
        return CheckResult(False, f"step {p.step} is not done")
    backups = backups_of(ctx.journal, p.step)
    if not backups:
        return CheckResult(False, f"step {p.step} journaled no backups")
    ddb = ctx.client("dynamodb")
    bad: list[str] = []
    arns: dict[str, str] = {}
    for table, entry in sorted(backups.items()):
        try:
            status = ddb.describe_backup(BackupArn=entry.arn)["BackupDescription"]["BackupDetails"][
                "BackupStatus"
            ]
        except Exception as exc:  # a vanished backup is a failed check, not a crash
            status = f"unreadable ({type(exc).__name__})"
        if status != "AVAILABLE":
            bad.append(f"{table}: {status}")
        arns[table] = entry.arn
    if bad:
        return CheckResult(
            False, f"{len(bad)} backup(s) not AVAILABLE: " + "; ".join(bad[:5]), {"arns": arns}
        )
    return CheckResult(True, f"{len(arns)} backups AVAILABLE", {"arns": arns})


CHECKS = (
    Check(
        "backups_available",
        BackupsParams,
        evaluate,
        "Every backup journaled by a step is AVAILABLE.",
    ),
)
