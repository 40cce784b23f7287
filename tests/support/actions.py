"""Running one action or gate check as the runner does, and the ops fixtures shared by the action
tests."""

from __future__ import annotations

from typing import Any

import tomli_w

from engine.actions import registry
from engine.checks import registry as checks

SECRET = "s3cr3t-not-a-flag"


def run(ctx: Any, name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    action = registry()[name]
    p = action.params.model_validate(params if params is not None else {})
    ctx.state.status = "running"
    summary = action.summary_dict(action.run(ctx, p), f"{name}.summary")  # as the runner does
    tomli_w.dumps({"s": summary})  # a summary must be TOML-able (no None)
    ctx.state.status = "done"
    ctx.state.summary = summary
    ctx.checkpoint(force=True)
    return summary


def step_params(runbook: Any, step_id: str) -> dict[str, Any]:
    return dict(runbook.step(step_id).params)


GATE = "gate-phase5"


def check(ctx: Any, name: str, params: dict[str, Any]) -> Any:
    c = checks()[name]
    return c.evaluate(ctx, c.params.model_validate(params))


def go(journal: Any) -> None:
    journal.gate(GATE).decision = "GO"


def final_backups(conn: Any, journal: Any, tables: list[str]) -> None:
    """What the backup step journals (format of engine/actions/prepare/backup.py)."""
    ddb = conn.client("dynamodb")
    backups = {}
    for t in tables:
        d = ddb.create_backup(TableName=t, BackupName="final-2024-12-01")["BackupDetails"]
        backups[t] = {"arn": d["BackupArn"], "name": d["BackupName"], "status": "AVAILABLE"}
    journal.step("final-backups").cursors["backups"] = backups
    journal.step("final-backups").status = "done"


def env(conn: Any, fn: str) -> dict[str, str]:
    """A function's environment variables, as Lambda returns them."""
    conf = conn.client("lambda").get_function_configuration(FunctionName=fn)
    return conf["Environment"]["Variables"]


def methods_of(gw: Any, api_id: str) -> dict[str, dict[str, Any]]:
    """ "METHOD /path" -> the method, for every route of a REST API."""
    out = {}
    for r in gw.get_resources(restApiId=api_id, embed=["methods"])["items"]:
        for m, spec in (r.get("resourceMethods") or {}).items():
            out[f"{m} {r['path']}"] = spec
    return out


def rollback_params(runbook: Any, action: str, rollback_id: str = "rollback-cleanup") -> dict:
    """The params of the rollback's step running `action`, as the runbook gives them."""
    rollback = runbook.find_rollback(rollback_id)
    return dict(next(s for s in rollback.steps if s.action == action).params)
