"""Phase 5 deletions: deprecated functions (and log groups), legacy API routes, legacy tables.

Every deletion is refused unless the gate the step requires is GO (the runner enforces
`requires_gate` too), and for a table unless its final backup is AVAILABLE. Before each
deletion, what is needed to bring the resource back is archived beside the journal
(`<journal>.artifacts/archive-<step>/`). Function environments are not written there: they may
hold secrets, so they go to an SSM SecureString in the target account
(`/runbook-console/archive/functions/<name>/environment`), and the local archive keeps only the
variable names. Already-deleted resources count as done; backups are kept.

Cursors / summaries others rely on (their models: engine/actions/cleanup_state.py):

delete_functions: cursors `deleted` (names this step deleted), `already_absent`,
    `log_groups_deleted`, `code_missing` (functions whose code package could not be fetched),
    `archive_dir`; summary {deleted, already_absent, log_groups_deleted, code_missing}.
delete_api_routes: cursors `api_id`, `archive` (file name in archive_dir), `archive_dir`,
    `deleted_routes` (["GET /expenses", ...]), `deleted_resources` (paths), `deployment_id`,
    `stages_redeployed`; summary {api, deleted_routes, deleted_resources, stages_redeployed}.
    Methods a kept route declares, and resources with methods or children left, stay.
delete_tables: cursors `deleted` (names), `already_absent`, `backups` ({table: backup arn}),
    `protection_disabled` (names), `archive_dir`; summary {deleted, already_absent,
    protection_disabled}.
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict

from engine.actions.backup import backups_of
from engine.actions.cleanup_state import (
    DeleteFunctionsCursors,
    DeleteFunctionsSummary,
    DeleteRoutesCursors,
    DeleteRoutesSummary,
    DeleteTablesCursors,
    DeleteTablesSummary,
    StagesCursors,
)
from engine.actions.flags import resolve_functions
from engine.context import Action, ActionContext, PlannedCall
from engine.model import Runbook

POLL_SECONDS = 2.0
MAX_WAIT_SECONDS = 1800.0
ENV_PARAMETER = "/runbook-console/archive/functions/{name}/environment"


class Refused(RuntimeError):
    """A destructive action's precondition does not hold; nothing was deleted."""


def require_go(ctx: ActionContext) -> str:
    """The step's required gate must be GO; a destructive step without one is refused."""
    step = next((s for s in ctx.runbook.steps if s.id == ctx.step_id), None)
    gate_id = step.requires_gate if step else None
    if not gate_id:
        raise Refused(f"{ctx.step_id}: a deletion needs a step with requires_gate; refused")
    if not ctx.gate_is_go(gate_id):
        decision = ctx.journal.gate(gate_id).decision or "undecided"
        raise Refused(f"{ctx.step_id}: gate {gate_id} is {decision}, not GO; nothing deleted")
    return gate_id


def archive_dir(ctx: ActionContext, step_id: str | None = None) -> Path:
    path = ctx.artifact(f"archive-{step_id or ctx.step_id}")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _safe(name: str) -> str:
    return name.strip("/").replace("/", "__")


def _clean(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))


def _rehearsal(ctx: ActionContext) -> bool:
    return ctx.is_embedded or ctx.journal.run.target.kind != "aws"


# --- delete_functions -------------------------------------------------------------------------


class DeleteFunctionsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    functions: list[str]
    delete_log_groups: bool = False


def fetch_code(ctx: ActionContext, location: str) -> tuple[bytes | None, str]:
    """The code package behind get_function's presigned URL, or (None, reason)."""
    if not location:
        return None, "get_function returned no code location"
    if _rehearsal(ctx):
        # moto's location names an S3 object it never stores, and no network is assumed:
        # ask the target's own S3 API, then give up honestly.
        url = urlparse(location)
        bucket = url.netloc.split(".s3")[0]
        try:
            obj = ctx.client("s3").get_object(Bucket=bucket, Key=url.path.lstrip("/"))
            return obj["Body"].read(), ""
        except Exception as exc:
            return None, f"code location not retrievable on this target ({type(exc).__name__})"
    try:
        with urllib.request.urlopen(location, timeout=60) as resp:
            return resp.read(), ""
    except Exception as exc:
        return None, f"code download failed: {type(exc).__name__}: {exc}"


def _policy(lam: Any, fn: str) -> dict[str, Any]:
    try:
        return json.loads(lam.get_policy(FunctionName=fn)["Policy"])
    except lam.exceptions.ResourceNotFoundException:
        return {}


def archive_function(ctx: ActionContext, fn: str, folder: Path) -> dict[str, Any]:
    """Configuration (env names only), code, policy, tags; env values to SSM SecureString."""
    lam = ctx.client("lambda")
    got = lam.get_function(FunctionName=fn)
    config = dict(got["Configuration"])
    variables = dict((config.pop("Environment", None) or {}).get("Variables", {}) or {})
    env_param = ENV_PARAMETER.format(name=fn)
    if variables:
        value = json.dumps(variables)
        ctx.client("ssm").put_parameter(
            Name=env_param,
            Value=value,
            Type="SecureString",
            Overwrite=True,
            Tier="Standard" if len(value) <= 4096 else "Advanced",
            Description=f"runbook-console archive of {fn}'s environment",
        )
    code, reason = fetch_code(ctx, got.get("Code", {}).get("Location", ""))
    if code is not None:
        (folder / f"{_safe(fn)}.zip").write_bytes(code)
    record = {
        "configuration": config,
        "environment_names": sorted(variables),
        "environment_parameter": env_param if variables else "",
        "code": {
            "retrieved": code is not None,
            "file": f"{_safe(fn)}.zip" if code else "",
            "reason": reason,
            "image_uri": got.get("Code", {}).get("ImageUri", ""),
        },
        "tags": got.get("Tags", {}),
        "policy": _policy(lam, fn),
        "concurrency": got.get("Concurrency", {}),
    }
    _write_json(folder / f"{_safe(fn)}.json", record)
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
    _write_json(
        folder / f"{_safe(group)}.loggroup.json",
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
            if not exists:
                # gone: by us before a crash (its archive is there) or before this run
                (deleted if (folder / f"{_safe(fn)}.json").exists() else absent).append(fn)
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
                with contextlib.suppress(lam.exceptions.ResourceNotFoundException):
                    lam.delete_function(FunctionName=fn)
                deleted.append(fn)
                ctx.log(f"deleted function {fn} (archived in {folder.name})")
            ctx.checkpoint(force=True)
        if p.delete_log_groups and group not in groups_deleted:
            if not (folder / f"{_safe(group)}.loggroup.json").exists():
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
        calls.append(PlannedCall("lambda", "DeleteFunction", fn))
        if p.delete_log_groups:
            calls.append(PlannedCall("logs", "DeleteLogGroup", rb.inventory.log_group_prefix + fn))
    return calls


# --- delete_api_routes ------------------------------------------------------------------------


class DeleteRoutesParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    routes: list[str] | None = None  # paths; default: the routes with deprecate = true


def find_api(gw: Any, name: str) -> str | None:
    for page in gw.get_paginator("get_rest_apis").paginate():
        for api in page.get("items", []):
            if api["name"] == name:
                return api["id"]
    return None


def resources_by_path(gw: Any, api_id: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for page in gw.get_paginator("get_resources").paginate(restApiId=api_id):
        for r in page.get("items", []):
            out[r["path"]] = r
    return out


def dump_api(gw: Any, api_id: str) -> list[dict[str, Any]]:
    """Resources with each method and its integration (get_method), for a faithful restore."""
    out = []
    for path, r in sorted(resources_by_path(gw, api_id).items()):
        methods = {}
        for m in r.get("resourceMethods") or {}:
            methods[m] = _clean(gw.get_method(restApiId=api_id, resourceId=r["id"], httpMethod=m))
        out.append(
            {
                "id": r["id"],
                "path": path,
                "parentId": r.get("parentId", ""),
                "pathPart": r.get("pathPart", ""),
                "methods": methods,
            }
        )
    return out


def _route_paths(rb: Runbook, p: DeleteRoutesParams) -> list[tuple[str, list[str]]]:
    api = rb.inventory.api
    routes = api.routes if api else []
    if p.routes is not None:
        chosen = [r for r in routes if r.path in p.routes]
    else:
        chosen = [r for r in routes if r.deprecate]
    # a method another (kept) route of the runbook declares on the same path stays
    kept = {(r.path, m) for r in routes if r not in chosen for m in r.methods}
    out = [(r.path, [m for m in r.methods if (r.path, m) not in kept]) for r in chosen]
    return sorted(out, key=lambda x: -x[0].count("/"))


def run_delete_routes(ctx: ActionContext, p: DeleteRoutesParams) -> DeleteRoutesSummary:
    require_go(ctx)
    api = ctx.runbook.inventory.api
    if api is None:
        return DeleteRoutesSummary()
    gw = ctx.client("apigateway")
    c = ctx.cursors_as(DeleteRoutesCursors)
    folder = archive_dir(ctx)
    c.archive_dir = folder.name
    api_id = c.api_id or find_api(gw, api.name)
    if api_id is None:
        raise RuntimeError(f"REST API {api.name!r} not found")
    c.api_id = api_id
    deleted_routes, deleted_resources = c.deleted_routes, c.deleted_resources
    archive = folder / f"api-{_safe(api.name)}.json"
    if not archive.exists():  # the first archive is the one from before any deletion
        export = ""
        try:
            export = gw.get_export(
                restApiId=api_id,
                stageName=api.stage,
                exportType="oas30",
                parameters={"extensions": "integrations"},
            )["body"].read()
            export = export.decode("utf-8")
        except Exception as exc:
            ctx.log(f"get_export not available ({type(exc).__name__}); JSON dump only", "warning")
        _write_json(
            archive,
            {
                "api_id": api_id,
                "name": api.name,
                "stage": api.stage,
                "resources": dump_api(gw, api_id),
                "export": export,
            },
        )
        c.archive = archive.name
        ctx.checkpoint(force=True)
    routes = _route_paths(ctx.runbook, p)
    for path, methods in routes:
        ctx.clock.check()
        res = resources_by_path(gw, api_id).get(path)
        for m in methods:
            key = f"{m} {path}"
            if key in deleted_routes:
                continue
            if res and m in (res.get("resourceMethods") or {}):
                with contextlib.suppress(gw.exceptions.NotFoundException):
                    gw.delete_method(restApiId=api_id, resourceId=res["id"], httpMethod=m)
                ctx.log(f"deleted route {key}")
            deleted_routes.append(key)
            ctx.checkpoint(force=True)
    for path, _ in routes:  # deepest first; only resources left empty and childless
        if path in deleted_resources:
            continue
        current = resources_by_path(gw, api_id)
        res = current.get(path)
        if res is None:
            deleted_resources.append(path)
            continue
        children = [q for q in current if q.startswith(path.rstrip("/") + "/")]
        if not (res.get("resourceMethods") or {}) and not children:
            gw.delete_resource(restApiId=api_id, resourceId=res["id"])
            deleted_resources.append(path)
            ctx.checkpoint(force=True)
    description = f"runbook-console {ctx.step_id}: routes removed"
    redeployed = redeploy_stages(ctx, c, gw, api_id, description)
    return DeleteRoutesSummary(
        api=api.name,
        deleted_routes=list(deleted_routes),
        deleted_resources=list(deleted_resources),
        stages_redeployed=redeployed,
    )


def redeploy_stages(
    ctx: ActionContext, c: StagesCursors, gw: Any, api_id: str, description: str
) -> list[str]:
    """One new deployment, then every stage that exists points at it (a route change is not
    served until then). A stage that does not exist is never created; an API left without any
    method cannot be deployed (AWS refuses), which is logged. Cursors: `deployment_id`,
    `stages_redeployed`."""
    stages = sorted(s["stageName"] for s in gw.get_stages(restApiId=api_id).get("item", []))
    if not stages:
        ctx.log("the API has no stage; nothing to redeploy", "warning")
        return []
    if c.deployment_id is None:
        try:
            c.deployment_id = gw.create_deployment(restApiId=api_id, description=description)["id"]
        except gw.exceptions.BadRequestException as exc:
            ctx.log(f"no deployment: {exc}", "warning")
            return []
        ctx.checkpoint(force=True)
    done, deployment = c.stages_redeployed, c.deployment_id
    for stage in stages:
        if stage in done:
            continue
        gw.update_stage(
            restApiId=api_id,
            stageName=stage,
            patchOperations=[{"op": "replace", "path": "/deploymentId", "value": deployment}],
        )
        done.append(stage)
        ctx.log(f"stage {stage} redeployed ({deployment})")
        ctx.checkpoint(force=True)
    return list(done)


def plan_delete_routes(rb: Runbook, p: DeleteRoutesParams) -> list[PlannedCall]:
    name = rb.inventory.api.name if rb.inventory.api else "?"
    calls = [PlannedCall("apigateway", "GetExport", name, "archive the definition")]
    for path, methods in _route_paths(rb, p):
        calls += [PlannedCall("apigateway", "DeleteMethod", f"{m} {path}") for m in methods]
    return [
        *calls,
        PlannedCall("apigateway", "DeleteResource", name, "resources left empty"),
        PlannedCall("apigateway", "CreateDeployment", name),
        PlannedCall("apigateway", "UpdateStage", name, "every existing stage"),
    ]


# --- delete_tables ----------------------------------------------------------------------------


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


def _wait_table(ctx: ActionContext, ddb: Any, table: str, gone: bool) -> None:
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
            "ttl": _clean(ddb.describe_time_to_live(TableName=table)),
            "continuous_backups": _clean(ddb.describe_continuous_backups(TableName=table)),
            "tags": list_tags(ddb, desc["TableArn"]),
            "stream": desc.get("StreamSpecification", {}),
        }
        _write_json(folder / f"{_safe(table)}.table.json", record)
        ctx.checkpoint(force=True)
        if desc.get("DeletionProtectionEnabled"):
            ddb.update_table(TableName=table, DeletionProtectionEnabled=False)
            if table not in unprotected:
                unprotected.append(table)
            ctx.log(f"{table}: deletion protection turned off (final backup AVAILABLE, GO)")
            ctx.checkpoint(force=True)
            _wait_table(ctx, ddb, table, gone=False)
        with contextlib.suppress(ddb.exceptions.ResourceNotFoundException):
            ddb.delete_table(TableName=table)
        deleted.append(table)
        ctx.checkpoint(force=True)
        _wait_table(ctx, ddb, table, gone=True)
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
        "delete_functions",
        DeleteFunctionsParams,
        run_delete_functions,
        plan_delete_functions,
        "Archive, then delete Lambda functions (and log groups)",
        cursors=DeleteFunctionsCursors,
        summary=DeleteFunctionsSummary,
    ),
    Action(
        "delete_api_routes",
        DeleteRoutesParams,
        run_delete_routes,
        plan_delete_routes,
        "Archive the API definition, then delete the deprecated routes and redeploy",
        cursors=DeleteRoutesCursors,
        summary=DeleteRoutesSummary,
    ),
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
