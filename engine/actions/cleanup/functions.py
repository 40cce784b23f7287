"""delete_functions: archive, then delete deprecated Lambda functions (and their log groups).

Code: $LATEST's package, and that of each published version whose code differs from it, one
zip per distinct CodeSha256 (engine/actions/cleanup/function_code.py).

Function environments are not written to the archive: they may hold secrets, so they go to an
SSM SecureString in the target account (`/runbook-console/archive/functions/<name>/environment`),
and the local archive keeps only the variable names.

cursors `deleted` (names this step deleted), `already_absent`, `log_groups_deleted`,
`code_missing` (functions whose code package could not be fetched), `archive_dir`; summary
{deleted, already_absent, log_groups_deleted, code_missing}.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.actions.cleanup.common import archive_dir, safe_name, write_json
from engine.actions.cleanup.function_archive import archive_links, delete_mappings
from engine.actions.cleanup.function_code import (
    archive_version_code,
    fetch_code,
    versions_without_code,
)
from engine.actions.cleanup.state import DeleteFunctionsCursors, DeleteFunctionsSummary
from engine.actions.destructive import require_go
from engine.actions.traffic.flags import resolve_functions
from engine.aws.environment import EnvironmentSealed, read_environment
from engine.core.context import Action, ActionContext, PlannedCall
from engine.runbook.model import Runbook

ENV_PARAMETER = "/runbook-console/archive/functions/{name}/environment"


class DeleteFunctionsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    functions: list[str]
    delete_log_groups: bool = False


def archive_function(ctx: ActionContext, fn: str, folder: Path) -> dict[str, Any]:
    """Configuration (env names only), code (each version's too: cleanup/function_code.py),
    tags, and what DeleteFunction takes with it (versions, aliases, policies, URLs, mappings:
    cleanup/function_archive.py); env values to an SSM SecureString."""
    lam = ctx.client("lambda")
    got = lam.get_function(FunctionName=fn)
    config = dict(got["Configuration"])
    try:  # never an empty archive of an environment that could not be read
        variables = read_environment(config, fn)
    except EnvironmentSealed as exc:
        raise EnvironmentSealed(f"{exc}; {fn} not archived, not deleted") from exc
    config.pop("Environment", None)
    env_param = ENV_PARAMETER.format(name=fn)
    if variables:
        value = json.dumps(variables)
        secure: dict[str, Any] = {"KeyId": config["KMSKeyArn"]} if config.get("KMSKeyArn") else {}
        ctx.client("ssm").put_parameter(
            Name=env_param,
            Value=value,
            Type="SecureString",
            Overwrite=True,
            Tier="Standard" if len(value) <= 4096 else "Advanced",
            Description=f"runbook-console archive of {fn}'s environment",
            **secure,  # a customer key's environment stays under that key
        )
    code, reason = fetch_code(ctx, got.get("Code", {}).get("Location", ""))
    if code is not None:
        (folder / f"{safe_name(fn)}.zip").write_bytes(code)
    record = {
        "configuration": config,
        "environment_names": sorted(variables),
        "environment_parameter": env_param if variables else "",
        "code": {
            "retrieved": code is not None,
            "file": f"{safe_name(fn)}.zip" if code else "",
            "reason": reason,
            "image_uri": got.get("Code", {}).get("ImageUri", ""),
        },
        "tags": got.get("Tags", {}),
        "concurrency": got.get("Concurrency", {}),
        **archive_links(lam, fn),
    }
    record["policy"] = record["policies"].get("", {})  # the unqualified one (older archives)
    record["code"]["versions"] = archive_version_code(ctx, lam, fn, record, folder)
    write_json(folder / f"{safe_name(fn)}.json", record)
    return record


def archive_log_group(ctx: ActionContext, group: str, folder: Path) -> bool:
    logs = ctx.client("logs")
    found = [
        g
        for g in logs.describe_log_groups(logGroupNamePrefix=group).get("logGroups", [])
        if g["logGroupName"] == group
    ]
    if not found:
        return False
    filters = logs.describe_metric_filters(logGroupName=group).get("metricFilters", [])
    write_json(
        folder / f"{safe_name(group)}.loggroup.json",
        {"log_group": found[0], "metric_filters": filters, "note": "log events are not archived"},
    )
    return True


def run_delete_functions(ctx: ActionContext, p: DeleteFunctionsParams) -> DeleteFunctionsSummary:
    require_go(ctx)
    lam = ctx.client("lambda")
    logs = ctx.client("logs")
    folder = archive_dir(ctx)
    c = ctx.cursors_as(DeleteFunctionsCursors)
    c.archive_dir = folder.name
    deleted, absent = c.deleted, c.already_absent
    groups_deleted, code_missing = c.log_groups_deleted, c.code_missing
    functions = resolve_functions(ctx.runbook, p.functions)
    for index, fn in enumerate(functions):
        ctx.clock.check()
        group = ctx.runbook.inventory.log_group_prefix + fn
        if fn not in deleted and fn not in absent:
            try:
                lam.get_function(FunctionName=fn)
                exists = True
            except lam.exceptions.ResourceNotFoundException:
                exists = False
            archived = folder / f"{safe_name(fn)}.json"
            if not exists and archived.exists():
                # gone by us before a crash: its mappings may still point at it
                delete_mappings(lam, json.loads(archived.read_text()))
                deleted.append(fn)
            elif not exists:
                absent.append(fn)  # gone before this run
            else:
                record = archive_function(ctx, fn, folder)
                if p.delete_log_groups:
                    archive_log_group(ctx, group, folder)
                if not record["code"]["retrieved"] and fn not in code_missing:
                    code_missing.append(fn)
                    ctx.log(
                        f"{fn}: code package not archived: {record['code']['reason']}", "warning"
                    )
                    ctx.checkpoint(force=True)  # robust: a kill before the delete keeps it
                if missing := versions_without_code(record):
                    ctx.log(
                        f"{fn}: code of version(s) {', '.join(missing)} not archived "
                        f"({record['code']['versions'][missing[0]]['reason']}): a restore "
                        "publishes them with $LATEST's code",
                        "warning",
                    )
                with contextlib.suppress(lam.exceptions.ResourceNotFoundException):
                    lam.delete_function(FunctionName=fn)
                # AWS keeps a deleted function's event source mappings, pointing at nothing
                delete_mappings(lam, record)
                deleted.append(fn)
                ctx.log(f"deleted function {fn} (archived in {folder.name})")
            ctx.checkpoint(force=True)
        if p.delete_log_groups and group not in groups_deleted:
            if not (folder / f"{safe_name(group)}.loggroup.json").exists():
                archive_log_group(ctx, group, folder)
            try:
                logs.delete_log_group(logGroupName=group)
                ctx.log(f"deleted log group {group}")
            except logs.exceptions.ResourceNotFoundException:
                pass
            groups_deleted.append(group)
            ctx.checkpoint(force=True)
        ctx.progress("functions", index + 1, len(functions))
    return DeleteFunctionsSummary(
        deleted=list(deleted),
        already_absent=list(absent),
        log_groups_deleted=len(groups_deleted),
        code_missing=list(code_missing),
    )


def plan_delete_functions(rb: Runbook, p: DeleteFunctionsParams) -> list[PlannedCall]:
    calls = []
    for fn in resolve_functions(rb, p.functions):
        calls.append(PlannedCall("lambda", "GetFunction", fn, "archive config + code"))
        calls.append(
            PlannedCall(
                "lambda", "GetFunction", f"{fn}:<version>", "code of a version that ran other code"
            )
        )
        calls.append(
            PlannedCall(
                "lambda",
                "ListAliases",
                fn,
                "archive versions, aliases, policies, URLs, event source mappings",
            )
        )
        calls.append(PlannedCall("lambda", "DeleteFunction", fn))
        calls.append(PlannedCall("lambda", "DeleteEventSourceMapping", fn, "its archived ones"))
        if p.delete_log_groups:
            calls.append(PlannedCall("logs", "DeleteLogGroup", rb.inventory.log_group_prefix + fn))
    return calls


ACTIONS = (
    Action(
        "delete_functions",
        DeleteFunctionsParams,
        run_delete_functions,
        plan_delete_functions,
        "Archive, then delete Lambda functions (and log groups)",
        cursors=DeleteFunctionsCursors,
        summary=DeleteFunctionsSummary,
    ),
)
