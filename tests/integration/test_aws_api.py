"""Issue 8, item 4: API Gateway checked on Day 1; route deletion keeps what others use and
redeploys the stages that exist."""

from __future__ import annotations

from typing import Any

import pytest

from engine.aws.apigateway import undeployed
from engine.core.context import NeedsAcceptance
from engine.runbook.model import RouteSpec
from tests.support.actions import go, run
from tests.support.aws_inject import rewrite_answer
from tests.support.worlds import prod_api


def api_id(conn: Any) -> str:
    return prod_api(conn)


def resource(gw: Any, api: str, path: str) -> dict[str, Any]:
    return next(r for r in gw.get_resources(restApiId=api)["items"] if r["path"] == path)


def test_inventory_checks_stage_and_integrations_on_day_one(world, make_ctx):
    ctx, _ = make_ctx("inventory", world)
    assert run(ctx, "inventory_diff", {})["api_problems"] == 0
    gw = world.client("apigateway")
    api = api_id(world)
    gw.delete_stage(restApiId=api, stageName="prod")
    company = resource(gw, api, "/company/works")
    gw.delete_integration(restApiId=api, resourceId=company["id"], httpMethod="PUT")
    gw.delete_method(restApiId=api, resourceId=company["id"], httpMethod="DELETE")
    ctx2, _ = make_ctx("inventory", world, journal=ctx.journal)  # the API journaled on Day 1
    with pytest.raises(NeedsAcceptance) as info:
        run(ctx2, "inventory_diff", {})
    found = info.value.summary["needs_acceptance"]
    assert "stage prod of REST API construction-expenses-api does not exist" in found
    assert "route PUT /company/works has no integration" in found
    assert "route DELETE /company/works does not exist" in found
    assert info.value.summary["api_problems"] == 3


def test_delete_routes_keeps_shared_methods_and_redeploys_existing_stages(world, make_ctx, runbook):
    gw = world.client("apigateway")
    api = api_id(world)
    # a second stage, and the plan's stage gone: only what exists is redeployed
    gw.create_deployment(restApiId=api, stageName="staging")
    gw.delete_stage(restApiId=api, stageName="prod")
    before = {s["stageName"]: s["deploymentId"] for s in gw.get_stages(restApiId=api)["item"]}
    # a method the runbook does not know (CORS) keeps /expenses alive
    expenses = resource(gw, api, "/expenses")
    gw.put_method(
        restApiId=api, resourceId=expenses["id"], httpMethod="OPTIONS", authorizationType="NONE"
    )
    gw.put_integration(restApiId=api, resourceId=expenses["id"], httpMethod="OPTIONS", type="MOCK")
    # a kept route of the runbook shares PUT /expenses/{id} with a deprecated one
    routes = [*runbook.inventory.api.routes, RouteSpec(path="/expenses/{id}", methods=["PUT"])]
    api_spec = runbook.inventory.api.model_copy(update={"routes": routes})
    rb = runbook.model_copy(
        update={"inventory": runbook.inventory.model_copy(update={"api": api_spec})}
    )
    ctx, _ = make_ctx("delete-legacy-routes", world, rb=rb)
    ctx.journal.api_id = api  # as Day 1 journaled it, while prod still existed
    go(ctx.journal)
    s = run(ctx, "delete_api_routes", {})
    assert "PUT /expenses/{id}" not in s["deleted_routes"]
    assert "DELETE /expenses/{id}" in s["deleted_routes"]
    paths = {r["path"]: r for r in gw.get_resources(restApiId=api)["items"]}
    assert set(paths["/expenses"]["resourceMethods"]) == {"OPTIONS"}
    assert set(paths["/expenses/{id}"]["resourceMethods"]) == {"PUT"}
    assert "/projects" not in paths and "/projects/{id}" not in paths
    assert set(paths["/company/expenses"]["resourceMethods"]) == {"GET", "POST", "PUT", "DELETE"}
    stages = {s["stageName"]: s["deploymentId"] for s in gw.get_stages(restApiId=api)["item"]}
    assert set(stages) == {"staging"} and s["stages_redeployed"] == ["staging"]
    assert stages["staging"] == ctx.cursors["deployment_id"] != before["staging"]
    # idempotent: nothing more deleted, no second deployment
    again = run(ctx, "delete_api_routes", {})
    assert again["deleted_routes"] == s["deleted_routes"]
    assert len(gw.get_deployments(restApiId=api)["items"]) == 3  # seed, staging, ours


def test_day_one_names_api_changes_no_deployment_holds(world, make_ctx):
    """A change made in the console and never deployed: the clean-up's CreateDeployment on
    Day 3 would publish it with the route removal. AWS says what a deployment serves in
    GetDeployment's `apiSummary` (embed=apisummary); moto answers without one, so the answer
    is given here as AWS documents it."""
    gw = world.client("apigateway")
    api = api_id(world)
    live = {
        f"{m} {r['path']}"
        for r in gw.get_resources(restApiId=api)["items"]
        for m in r.get("resourceMethods") or {}
    }
    served = set(live)

    def summary(parsed: dict[str, Any], n: int) -> None:
        tree: dict[str, dict[str, dict]] = {}
        for route in served:
            method, path = route.split(" ", 1)
            tree.setdefault(path, {})[method] = {"authorizationType": "NONE"}
        parsed["apiSummary"] = tree

    rewrite_answer(gw, "GetDeployment", summary)
    ctx, _ = make_ctx("inventory", world)
    assert run(ctx, "inventory_diff", {})["api_problems"] == 0  # the stage serves it all
    served.discard("GET /company/works")  # added after the last deployment
    served.add("PATCH /expenses")  # removed since: still served
    ctx2, _ = make_ctx("inventory", world, journal=ctx.journal)
    with pytest.raises(NeedsAcceptance) as info:
        run(ctx2, "inventory_diff", {})
    (found,) = [p for p in info.value.summary["needs_acceptance"] if "no deployment" in p]
    assert "+ GET /company/works" in found and "- PATCH /expenses" in found, found
    assert "redeploy on Day 3 would publish them" in found


def test_undeployed_route_changes_are_listed_added_then_removed() -> None:
    assert undeployed({"GET /a", "PUT /b"}, {"PUT /b", "DELETE /c"}) == ["+ GET /a", "- DELETE /c"]
    assert undeployed({"GET /a"}, {"GET /a"}) == []
