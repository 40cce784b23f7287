"""restore_api_routes: recreate the API routes a delete_api_routes step deleted (methods,
responses, integrations) from its archive, then redeploy every stage.

cursors `restored_routes` (["GET /expenses", ...]), `deployment_id`, `stages_redeployed`;
summary {api, restored_routes, stages_redeployed}.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.actions.cleanup.routes import redeploy_stages
from engine.actions.cleanup.state import StagesCursors, route_deletions_of
from engine.actions.restore.common import archive_folder
from engine.aws.apigateway import resources_by_path
from engine.aws.resend import create_once
from engine.core.context import Action, ActionContext, PlannedCall
from engine.runbook.model import Runbook
from engine.state.records import Summary


class RestoreRoutesCursors(StagesCursors):
    restored_routes: list[str] = []  # ["GET /expenses", ...]


class RestoreRoutesSummary(Summary):
    api: str = ""
    restored_routes: list[str] = []
    stages_redeployed: list[str] = []


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


def _method(gw: Any, api_id: str, rid: str, method: str) -> dict[str, Any] | None:
    try:
        return gw.get_method(restApiId=api_id, resourceId=rid, httpMethod=method)
    except gw.exceptions.NotFoundException:
        return None


def _ensure_path(gw: Any, api_id: str, path: str, current: dict[str, dict[str, Any]]) -> str:
    """The resource of `path`, created with its missing parents; `current` (the API's
    resources by path, read once per step: GetResources is limited to 5 per 2 s) is kept up
    to date."""
    if path in current:
        return current[path]["id"]
    parent = "/"
    for part in path.strip("/").split("/"):
        here = parent.rstrip("/") + "/" + part
        if here not in current:
            current[here] = create_once(
                lambda parent_id=current[parent]["id"], part=part: gw.create_resource(
                    restApiId=api_id, parentId=parent_id, pathPart=part
                ),
                lambda here=here: resources_by_path(gw, api_id).get(here),
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
    folder = archive_folder(ctx, deletions.archive_dir, p.delete_step)
    if deletions.archive is None:
        raise RuntimeError(f"{p.delete_step} journaled no API archive; cannot restore its routes")
    archive_path = folder / deletions.archive
    archive = json.loads(archive_path.read_text())
    api_id = deletions.api_id or archive.get("api_id")  # the API the delete step changed
    if not api_id:
        raise RuntimeError(f"{p.delete_step} journaled no API id; cannot restore its routes")
    try:
        gw.get_rest_api(restApiId=api_id)
    except gw.exceptions.NotFoundException as exc:
        raise RuntimeError(
            f"REST API {archive['name']!r} ({api_id}) not found; restore it from {archive_path} "
            "(export) first"
        ) from exc
    by_path = {r["path"]: r for r in archive["resources"]}
    current = resources_by_path(gw, api_id)
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
        rid = _ensure_path(gw, api_id, path, current)
        try:
            present = gw.get_method(restApiId=api_id, resourceId=rid, httpMethod=method)
        except gw.exceptions.NotFoundException:
            create_once(
                lambda rid=rid, method=method, spec=spec: gw.put_method(
                    restApiId=api_id, resourceId=rid, httpMethod=method, **_pick(spec, _METHOD_KEYS)
                ),
                lambda rid=rid, method=method: _method(gw, api_id, rid, method),
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
        "restore_api_routes",
        RestoreRoutesParams,
        run_restore_routes,
        plan_restore_routes,
        "Recreate deleted API routes, methods and integrations from the archive",
        cursors=RestoreRoutesCursors,
        summary=RestoreRoutesSummary,
    ),
)
