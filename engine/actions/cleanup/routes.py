"""delete_api_routes: archive the REST API, delete the deprecated routes, redeploy its stages;
with the API Gateway reads the restore, the inventory and the flags use (resources_by_path,
redeploy_stages). The API is the one journaled on Day 1 (engine/actions/api_identity.py).

cursors `api_id`, `archive` (file name in archive_dir), `archive_dir`, `deleted_routes`
(["GET /expenses", ...]), `deleted_resources` (paths), `deployment_id`, `stages_redeployed`;
summary {api, deleted_routes, deleted_resources, stages_redeployed}. Methods a kept route
declares, and resources with methods or children left, stay.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.actions.api_identity import api_id_of
from engine.actions.cleanup.common import archive_dir, safe_name, strip_metadata, write_json
from engine.actions.cleanup.state import DeleteRoutesCursors, DeleteRoutesSummary, StagesCursors
from engine.actions.destructive import require_go
from engine.aws.apigateway import resources_by_path
from engine.core.context import Action, ActionContext, PlannedCall
from engine.runbook.model import Runbook


class DeleteRoutesParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    routes: list[str] | None = None  # paths; default: the routes with deprecate = true


def dump_api(gw: Any, api_id: str) -> list[dict[str, Any]]:
    """Resources with each method and its integration (get_method), for a faithful restore."""
    out = []
    for path, r in sorted(resources_by_path(gw, api_id).items()):
        methods = {}
        for m in r.get("resourceMethods") or {}:
            methods[m] = strip_metadata(
                gw.get_method(restApiId=api_id, resourceId=r["id"], httpMethod=m)
            )
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
    api_id = c.api_id or api_id_of(ctx)  # the id journaled on Day 1
    if api_id is None:
        raise RuntimeError(f"REST API {api.name!r} not found")
    c.api_id = api_id
    deleted_routes, deleted_resources = c.deleted_routes, c.deleted_resources
    archive = folder / f"api-{safe_name(api.name)}.json"
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
        write_json(
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
    # read once per step and kept up to date here: GetResources is limited to 5 per 2 s
    current = resources_by_path(gw, api_id)
    for path, methods in routes:
        ctx.clock.check()
        res = current.get(path)
        for m in methods:
            key = f"{m} {path}"
            if key in deleted_routes:
                continue
            if res and m in (res.get("resourceMethods") or {}):
                with contextlib.suppress(gw.exceptions.NotFoundException):
                    gw.delete_method(restApiId=api_id, resourceId=res["id"], httpMethod=m)
                res["resourceMethods"].pop(m)
                ctx.log(f"deleted route {key}")
            deleted_routes.append(key)
            ctx.checkpoint(force=True)
    for path, _ in routes:  # deepest first; only resources left empty and childless
        if path in deleted_resources:
            continue
        res = current.get(path)
        if res is None:
            deleted_resources.append(path)
            continue
        children = [q for q in current if q.startswith(path.rstrip("/") + "/")]
        if not (res.get("resourceMethods") or {}) and not children:
            with contextlib.suppress(gw.exceptions.NotFoundException):  # a lost answer's retry
                gw.delete_resource(restApiId=api_id, resourceId=res["id"])
            current.pop(path)
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


DEPLOYMENT_INTERVAL_SECONDS = 5.0  # API Gateway: one CreateDeployment per 5 s per account


def deployment_wait(last: str | None, now: datetime) -> float:
    """Pure: seconds to wait before the next CreateDeployment (a TooManyRequestsException
    that still comes, from another caller in the account, is backed off by the retries)."""
    if last is None:
        return 0.0
    since = (now - datetime.fromisoformat(last)).total_seconds()
    return max(0.0, min(DEPLOYMENT_INTERVAL_SECONDS, DEPLOYMENT_INTERVAL_SECONDS - since))


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
        ctx.clock.sleep_real(deployment_wait(ctx.journal.api_deployed_at, datetime.now(UTC)))
        try:
            c.deployment_id = gw.create_deployment(restApiId=api_id, description=description)["id"]
        except gw.exceptions.BadRequestException as exc:
            ctx.log(f"no deployment: {exc}", "warning")
            return []
        ctx.journal.api_deployed_at = datetime.now(UTC).isoformat()
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


ACTIONS = (
    Action(
        "delete_api_routes",
        DeleteRoutesParams,
        run_delete_routes,
        plan_delete_routes,
        "Archive the API definition, then delete the deprecated routes and redeploy",
        cursors=DeleteRoutesCursors,
        summary=DeleteRoutesSummary,
    ),
)
