"""restore_functions: recreate the Lambda functions (and log groups) a delete_functions step
deleted, from its archive; the environment from its SSM SecureString.

cursors `restored`, `placeholder_code` (rehearsal only: code that could not be archived was
replaced by a stub handler), `log_groups_restored`; summary the same lists.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.actions.cleanup.common import safe_name
from engine.actions.cleanup.state import function_deletions_of
from engine.actions.restore.common import MAX_SETTLE_SECONDS, archive_folder
from engine.actions.traffic.flags import retry_conflicts
from engine.aws.resend import create_once
from engine.aws.tags import user_tags
from engine.core.context import Action, ActionContext, PlannedCall
from engine.runbook.model import Runbook
from engine.state.records import Cursors, Summary


class RestoreFunctionsCursors(Cursors):
    restored: list[str] = []
    placeholder_code: list[str] = []  # rehearsal only: code not archived, a stub handler
    log_groups_restored: list[str] = []


class RestoreFunctionsSummary(Summary):
    restored: list[str] = []
    placeholder_code: list[str] = []
    log_groups_restored: int = 0


class RestoreFunctionsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    delete_step: str


_CONFIG_KEYS = (
    "Role",
    "Runtime",
    "Handler",
    "Timeout",
    "MemorySize",
    "Description",
    "PackageType",
    "Architectures",
    "KMSKeyArn",
)


def _create_kwargs(
    ctx: ActionContext, fn: str, record: dict[str, Any], folder: Path, placeholder: list[str]
) -> dict[str, Any]:
    conf = record["configuration"]
    kwargs: dict[str, Any] = {"FunctionName": fn}
    kwargs.update({k: conf[k] for k in _CONFIG_KEYS if conf.get(k) not in (None, "", [])})
    if conf.get("Layers"):
        kwargs["Layers"] = [layer["Arn"] for layer in conf["Layers"]]
    vpc = conf.get("VpcConfig") or {}
    if vpc.get("SubnetIds"):
        kwargs["VpcConfig"] = {
            "SubnetIds": vpc["SubnetIds"],
            "SecurityGroupIds": vpc.get("SecurityGroupIds", []),
        }
    if (conf.get("DeadLetterConfig") or {}).get("TargetArn"):
        kwargs["DeadLetterConfig"] = {"TargetArn": conf["DeadLetterConfig"]["TargetArn"]}
    if (conf.get("TracingConfig") or {}).get("Mode"):
        kwargs["TracingConfig"] = {"Mode": conf["TracingConfig"]["Mode"]}
    if (conf.get("EphemeralStorage") or {}).get("Size"):
        kwargs["EphemeralStorage"] = {"Size": conf["EphemeralStorage"]["Size"]}
    tags, reserved = user_tags(record.get("tags"))
    if tags:
        kwargs["Tags"] = tags
    if reserved:
        ctx.log(f"{fn}: tags {', '.join(reserved)} are set by AWS (CloudFormation), not restored")
    if record.get("environment_parameter"):
        value = ctx.client("ssm").get_parameter(
            Name=record["environment_parameter"], WithDecryption=True
        )["Parameter"]["Value"]
        kwargs["Environment"] = {"Variables": json.loads(value)}
    code = record["code"]
    if code.get("retrieved") and (folder / code["file"]).exists():
        kwargs["Code"] = {"ZipFile": (folder / code["file"]).read_bytes()}
    elif code.get("image_uri"):
        kwargs["Code"] = {"ImageUri": code["image_uri"]}
    elif (placeholder_zip := ctx.world.placeholder_code()) is not None:
        kwargs["Code"] = {"ZipFile": placeholder_zip}
        kwargs["Handler"] = "index.handler"
        if fn not in placeholder:
            placeholder.append(fn)
        ctx.log(
            f"{fn}: code was not archived ({code.get('reason', '')}); rehearsal restore "
            "with a stub handler",
            "warning",
        )
    else:
        raise RuntimeError(
            f"{fn}: its code package was not archived ({code.get('reason', '')});"
            " redeploy it from the build pipeline, then re-run this restore"
        )
    return kwargs


def _wait_function_active(ctx: ActionContext, lam: Any, fn: str) -> None:
    """A new function is Pending until Lambda has set it up (waiter function_active_v2);
    AddPermission or PutFunctionConcurrency before that fails with ResourceConflictException."""
    waited = 0.0
    while True:
        conf = lam.get_function_configuration(FunctionName=fn)
        state = conf.get("State") or "Active"
        if state == "Active" and conf.get("LastUpdateStatus") != "InProgress":
            return
        if state == "Failed":
            raise RuntimeError(f"{fn}: creation failed: {conf.get('StateReason', '')}")
        if waited >= MAX_SETTLE_SECONDS:
            raise RuntimeError(f"{fn}: still {state} after {waited:.0f}s")
        ctx.clock.sleep_real(1.0)
        waited += 1.0


def _statement_ids(lam: Any, fn: str) -> set[str]:
    try:
        policy = json.loads(lam.get_policy(FunctionName=fn)["Policy"])
    except lam.exceptions.ResourceNotFoundException:
        return set()
    return {st.get("Sid", "") for st in policy.get("Statement", [])}


def _exists(lam: Any, fn: str) -> str | None:
    try:
        lam.get_function(FunctionName=fn)
    except lam.exceptions.ResourceNotFoundException:
        return None
    return fn


def _restore_policy(ctx: ActionContext, lam: Any, fn: str, policy: dict[str, Any]) -> None:
    """Add each archived statement that is not there; a ResourceConflictException means the
    function is busy (retried), never "already there": presence is read from the policy."""
    present = _statement_ids(lam, fn)
    for st in policy.get("Statement", []):
        principal = st.get("Principal", {})
        if isinstance(principal, dict):
            principal = principal.get("Service") or principal.get("AWS") or ""
        kwargs: dict[str, Any] = {
            "FunctionName": fn,
            "StatementId": st.get("Sid", "restored"),
            "Action": st.get("Action", "lambda:InvokeFunction"),
            "Principal": principal,
        }
        if kwargs["StatementId"] in present:
            continue
        source = (st.get("Condition", {}).get("ArnLike", {}) or {}).get("AWS:SourceArn")
        if source:
            kwargs["SourceArn"] = source
        sid = kwargs["StatementId"]
        create_once(
            lambda kw=kwargs: retry_conflicts(
                ctx, lam, f"{fn}: add permission", lambda: lam.add_permission(**kw)
            ),
            lambda s=sid: s if s in _statement_ids(lam, fn) else None,
        )
        present.add(kwargs["StatementId"])


def _restore_log_group(ctx: ActionContext, group: str, folder: Path) -> None:
    logs = ctx.client("logs")
    path = folder / f"{safe_name(group)}.loggroup.json"
    record = json.loads(path.read_text()) if path.exists() else {"log_group": {}}
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    if record["log_group"].get("retentionInDays"):
        logs.put_retention_policy(
            logGroupName=group, retentionInDays=record["log_group"]["retentionInDays"]
        )
    for f in record.get("metric_filters", []):
        logs.put_metric_filter(
            logGroupName=group,
            filterName=f["filterName"],
            filterPattern=f.get("filterPattern", ""),
            metricTransformations=f["metricTransformations"],
        )


def run_restore_functions(ctx: ActionContext, p: RestoreFunctionsParams) -> RestoreFunctionsSummary:
    lam = ctx.client("lambda")
    deletions = function_deletions_of(ctx.journal, p.delete_step)
    folder = archive_folder(ctx, deletions.archive_dir, p.delete_step)
    deleted, groups = list(deletions.deleted), list(deletions.log_groups_deleted)
    c = ctx.cursors_as(RestoreFunctionsCursors)
    restored, placeholder, groups_restored = c.restored, c.placeholder_code, c.log_groups_restored
    for index, fn in enumerate(deleted):
        ctx.clock.check()
        if fn in restored:
            continue
        path = folder / f"{safe_name(fn)}.json"
        if not path.exists():
            raise RuntimeError(f"{fn}: no archive at {path}; cannot restore")
        record = json.loads(path.read_text())
        try:
            lam.get_function(FunctionName=fn)
        except lam.exceptions.ResourceNotFoundException:
            create = _create_kwargs(ctx, fn, record, folder, placeholder)
            create_once(lambda kw=create: lam.create_function(**kw), lambda f=fn: _exists(lam, f))
            ctx.log(f"recreated function {fn}")
        _wait_function_active(ctx, lam, fn)
        _restore_policy(ctx, lam, fn, record.get("policy", {}))
        reserved = record.get("concurrency", {}).get("ReservedConcurrentExecutions")
        if reserved is not None:
            retry_conflicts(
                ctx,
                lam,
                f"{fn}: concurrency",
                lambda fn=fn, n=reserved: lam.put_function_concurrency(
                    FunctionName=fn, ReservedConcurrentExecutions=n
                ),
            )
        restored.append(fn)
        ctx.progress("functions", index + 1, len(deleted))
        ctx.checkpoint(force=True)
    for group in groups:
        if group in groups_restored:
            continue
        _restore_log_group(ctx, group, folder)
        groups_restored.append(group)
        ctx.checkpoint()
    ctx.checkpoint(force=True)
    return RestoreFunctionsSummary(
        restored=list(restored),
        placeholder_code=list(placeholder),
        log_groups_restored=len(groups_restored),
    )


def plan_restore_functions(rb: Runbook, p: RestoreFunctionsParams) -> list[PlannedCall]:
    return [
        PlannedCall(
            "lambda",
            "CreateFunction",
            f"functions {p.delete_step} deleted",
            "from archives; environment from SSM SecureString",
        )
    ]


ACTIONS = (
    Action(
        "restore_functions",
        RestoreFunctionsParams,
        run_restore_functions,
        plan_restore_functions,
        "Recreate deleted Lambda functions from their archives",
        cursors=RestoreFunctionsCursors,
        summary=RestoreFunctionsSummary,
    ),
)
