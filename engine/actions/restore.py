"""Rollback of Phase 5: tables from their final backups, functions and routes from archives.

Each restore reads what the delete step journaled (see engine/actions/cleanup_*.py) and is
resumable: resources already back count as restored.

Cursors / summaries:
restore_tables: cursors `restored` (names); summary {restored, from_backups}.
restore_functions: cursors `restored`, `placeholder_code` (rehearsal only: code that could not
    be archived was replaced by a stub handler), `log_groups_restored`; summary the same lists.
restore_api_routes: cursors `restored_routes` (["GET /expenses", ...]), `deployment_id`;
    summary {api, restored_routes}.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.actions.backup import backups_of
from engine.actions.cleanup_common import is_rehearsal, safe_name
from engine.actions.cleanup_routes import find_api, redeploy_stages, resources_by_path
from engine.actions.cleanup_state import (
    StagesCursors,
    function_deletions_of,
    route_deletions_of,
    table_deletions_of,
)
from engine.actions.cleanup_tables import wait_table
from engine.actions.flags import retry_conflicts
from engine.context import Action, ActionContext, PlannedCall
from engine.model import Runbook
from engine.resume import Cursors, Summary
from engine.seed import handler_zip

MAX_SETTLE_SECONDS = 900.0  # how long AWS may answer "not yet" after a restore or create
MAX_BACKOFF_SECONDS = 30.0


def _folder(ctx: ActionContext, archive_dir: str | None, step_id: str) -> Path:
    """The archive folder a delete step journaled (its default name before it journaled one)."""
    return ctx.artifacts_dir / (archive_dir or f"archive-{step_id}")


class RestoreTablesCursors(Cursors):
    restored: list[str] = []


class RestoreTablesSummary(Summary):
    restored: list[str] = []
    from_backups: int = 0


class RestoreFunctionsCursors(Cursors):
    restored: list[str] = []
    placeholder_code: list[str] = []  # rehearsal only: code not archived, a stub handler
    log_groups_restored: list[str] = []


class RestoreFunctionsSummary(Summary):
    restored: list[str] = []
    placeholder_code: list[str] = []
    log_groups_restored: int = 0


class RestoreRoutesCursors(StagesCursors):
    restored_routes: list[str] = []  # ["GET /expenses", ...]


class RestoreRoutesSummary(Summary):
    api: str = ""
    restored_routes: list[str] = []
    stages_redeployed: list[str] = []


# --- restore_tables ---------------------------------------------------------------------------


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
    folder = _folder(ctx, deletions.archive_dir, p.delete_step)
    restored = ctx.cursors_as(RestoreTablesCursors).restored
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
            ddb.restore_table_from_backup(TargetTableName=table, BackupArn=arns[table])
            ctx.log(f"{table}: restoring from {arns[table]}")
            ctx.checkpoint(force=True)
        wait_table(ctx, ddb, table, gone=False)
        _restore_table_settings(ctx, ddb, table, folder, table in protected)
        restored.append(table)
        ctx.progress("tables", index + 1, len(deleted))
        ctx.checkpoint(force=True)
    return RestoreTablesSummary(restored=list(restored), from_backups=len(restored))


def _retry(ctx: ActionContext, what: str, call: Any, retry_on: tuple[type[Exception], ...]) -> Any:
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


def _update_table(ctx: ActionContext, ddb: Any, table: str, **kwargs: Any) -> None:
    """UpdateTable once the table is ACTIVE, and wait for it to be ACTIVE again."""
    wait_table(ctx, ddb, table, gone=False)
    _retry(
        ctx,
        f"{table}: update table",
        lambda: ddb.update_table(TableName=table, **kwargs),
        (ddb.exceptions.ResourceInUseException,),
    )
    wait_table(ctx, ddb, table, gone=False)


def _restore_table_settings(
    ctx: ActionContext, ddb: Any, table: str, folder: Path, protect: bool
) -> None:
    """What a backup does not carry, from the archive the delete step wrote: deletion
    protection, stream, tags, TTL, PITR. Each is compared with the table first, so a re-run
    after a crash changes nothing twice (AWS refuses to enable TTL or a stream twice)."""
    desc = ddb.describe_table(TableName=table)["Table"]
    if protect and not desc.get("DeletionProtectionEnabled"):
        _update_table(ctx, ddb, table, DeletionProtectionEnabled=True)
    path = folder / f"{safe_name(table)}.table.json"
    if not path.exists():
        ctx.log(f"{table}: no settings archive; tags, TTL, stream and PITR not restored", "warning")
        return
    record = json.loads(path.read_text())
    stream = record.get("stream") or record.get("table", {}).get("StreamSpecification") or {}
    live_stream = desc.get("StreamSpecification") or {}
    if stream.get("StreamEnabled") and not live_stream.get("StreamEnabled"):
        spec = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
        _update_table(ctx, ddb, table, StreamSpecification=spec)
        ctx.log(f"{table}: stream re-enabled ({stream['StreamViewType']})")
    if record.get("tags"):
        ddb.tag_resource(ResourceArn=desc["TableArn"], Tags=record["tags"])
    ttl = record.get("ttl", {}).get("TimeToLiveDescription", {})
    if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") and ttl.get("AttributeName"):
        live_ttl = ddb.describe_time_to_live(TableName=table).get("TimeToLiveDescription", {})
        if live_ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            _retry(
                ctx,
                f"{table}: TTL",
                lambda: ddb.update_time_to_live(
                    TableName=table,
                    TimeToLiveSpecification={
                        "Enabled": True,
                        "AttributeName": ttl["AttributeName"],
                    },
                ),
                (ddb.exceptions.ResourceInUseException,),
            )
    pitr = (
        record.get("continuous_backups", {})
        .get("ContinuousBackupsDescription", {})
        .get("PointInTimeRecoveryDescription", {})
    )
    if pitr.get("PointInTimeRecoveryStatus") == "ENABLED":
        # right after a restore AWS answers ContinuousBackupsUnavailableException for a while
        _retry(
            ctx,
            f"{table}: point-in-time recovery",
            lambda: ddb.update_continuous_backups(
                TableName=table,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            ),
            (ddb.exceptions.ContinuousBackupsUnavailableException,),
        )


def plan_restore_tables(rb: Runbook, p: RestoreTablesParams) -> list[PlannedCall]:
    return [
        PlannedCall(
            "dynamodb",
            "RestoreTableFromBackup",
            f"tables {p.delete_step} deleted",
            f"backups of {p.backup_step}",
        )
    ]


# --- restore_functions ------------------------------------------------------------------------


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
    if record.get("tags"):
        kwargs["Tags"] = record["tags"]
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
    elif is_rehearsal(ctx):
        kwargs["Code"] = {"ZipFile": handler_zip()}
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
        retry_conflicts(
            ctx, lam, f"{fn}: add permission", lambda kw=kwargs: lam.add_permission(**kw)
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
    folder = _folder(ctx, deletions.archive_dir, p.delete_step)
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
            lam.create_function(**_create_kwargs(ctx, fn, record, folder, placeholder))
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


# --- restore_api_routes -----------------------------------------------------------------------


class RestoreRoutesParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    delete_step: str


_METHOD_KEYS = (
    "authorizationType",
    "authorizerId",
    "apiKeyRequired",
    "operationName",
    "requestParameters",
    "requestModels",
    "requestValidatorId",
    "authorizationScopes",
)
_INTEGRATION_KEYS = (
    "type",
    "integrationHttpMethod",
    "uri",
    "connectionType",
    "connectionId",
    "credentials",
    "requestParameters",
    "requestTemplates",
    "passthroughBehavior",
    "cacheNamespace",
    "cacheKeyParameters",
    "contentHandling",
    "timeoutInMillis",
)


def _pick(src: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: src[k] for k in keys if src.get(k) not in (None, "", {}, [])}


def _ensure_path(gw: Any, api_id: str, path: str) -> str:
    current = resources_by_path(gw, api_id)
    if path in current:
        return current[path]["id"]
    parent = "/"
    for part in path.strip("/").split("/"):
        here = parent.rstrip("/") + "/" + part
        if here not in current:
            current[here] = gw.create_resource(
                restApiId=api_id, parentId=current[parent]["id"], pathPart=part
            )
        parent = here
    return current[path]["id"]


def run_restore_routes(ctx: ActionContext, p: RestoreRoutesParams) -> RestoreRoutesSummary:
    gw = ctx.client("apigateway")
    deletions = route_deletions_of(ctx.journal, p.delete_step)
    wanted = list(deletions.deleted_routes)
    c = ctx.cursors_as(RestoreRoutesCursors)
    restored = c.restored_routes
    if not wanted:
        return RestoreRoutesSummary()
    folder = _folder(ctx, deletions.archive_dir, p.delete_step)
    if deletions.archive is None:
        raise RuntimeError(f"{p.delete_step} journaled no API archive; cannot restore its routes")
    archive_path = folder / deletions.archive
    archive = json.loads(archive_path.read_text())
    api_id = find_api(gw, archive["name"])
    if api_id is None:
        raise RuntimeError(
            f"REST API {archive['name']!r} not found; restore it from {archive_path} (export) first"
        )
    by_path = {r["path"]: r for r in archive["resources"]}
    for key in wanted:
        ctx.clock.check()
        if key in restored:
            continue
        method, path = key.split(" ", 1)
        spec = by_path.get(path, {}).get("methods", {}).get(method)
        if spec is None:
            ctx.log(f"{key}: not in the archive (was absent before deletion); skipped", "warning")
            restored.append(key)
            continue
        rid = _ensure_path(gw, api_id, path)
        try:
            present = gw.get_method(restApiId=api_id, resourceId=rid, httpMethod=method)
        except gw.exceptions.NotFoundException:
            gw.put_method(
                restApiId=api_id, resourceId=rid, httpMethod=method, **_pick(spec, _METHOD_KEYS)
            )
            present = {}
        for code, resp in (spec.get("methodResponses") or {}).items():
            if code not in (present.get("methodResponses") or {}):
                gw.put_method_response(
                    restApiId=api_id,
                    resourceId=rid,
                    httpMethod=method,
                    statusCode=code,
                    **_pick(resp, ("responseParameters", "responseModels")),
                )
        integration = spec.get("methodIntegration")
        if integration and not present.get("methodIntegration"):
            kwargs = _pick(integration, _INTEGRATION_KEYS)
            if integration.get("httpMethod"):  # get_method names it httpMethod
                kwargs["integrationHttpMethod"] = integration["httpMethod"]
            gw.put_integration(restApiId=api_id, resourceId=rid, httpMethod=method, **kwargs)
            for code, resp in (integration.get("integrationResponses") or {}).items():
                gw.put_integration_response(
                    restApiId=api_id,
                    resourceId=rid,
                    httpMethod=method,
                    statusCode=code,
                    **_pick(
                        resp,
                        (
                            "selectionPattern",
                            "responseParameters",
                            "responseTemplates",
                            "contentHandling",
                        ),
                    ),
                )
        restored.append(key)
        ctx.log(f"restored route {key}")
        ctx.checkpoint(force=True)
    stages = redeploy_stages(
        ctx, c, gw, api_id, f"runbook-console: routes restored after {p.delete_step}"
    )
    return RestoreRoutesSummary(
        api=archive["name"], restored_routes=list(restored), stages_redeployed=stages
    )


def plan_restore_routes(rb: Runbook, p: RestoreRoutesParams) -> list[PlannedCall]:
    name = rb.inventory.api.name if rb.inventory.api else "?"
    return [
        PlannedCall(
            "apigateway",
            "PutMethod",
            f"routes {p.delete_step} deleted",
            "with integrations, from the archive",
        ),
        PlannedCall("apigateway", "CreateDeployment", name),
        PlannedCall("apigateway", "UpdateStage", name, "every existing stage"),
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
    Action(
        "restore_functions",
        RestoreFunctionsParams,
        run_restore_functions,
        plan_restore_functions,
        "Recreate deleted Lambda functions from their archives",
        cursors=RestoreFunctionsCursors,
        summary=RestoreFunctionsSummary,
    ),
    Action(
        "restore_api_routes",
        RestoreRoutesParams,
        run_restore_routes,
        plan_restore_routes,
        "Recreate deleted API routes, methods and integrations from the archive",
        cursors=RestoreRoutesCursors,
        summary=RestoreRoutesSummary,
    ),
)
