"""Issue 19, deliverable 1: the REST API by identity. The world holds a staging stack of the
same API (same name, a `staging` stage only); Day 1 resolves the runbook's API by its name and
stage, refuses when more than one still matches (listing id, stages, creation date), takes a
pinned id, journals it, and every later step and rollback uses the journaled id."""

from __future__ import annotations

from typing import Any

import pytest

from engine.aws.apigateway import ApiNotResolved, apis_named
from tests.support.actions import go, methods_of, run
from tests.support.worlds import API_NAME, prod_api, staging_api


def _pinned(runbook: Any, api_id: str) -> Any:
    api = runbook.inventory.api.model_copy(update={"id": api_id})
    inventory = runbook.inventory.model_copy(update={"api": api})
    return runbook.model_copy(update={"inventory": inventory})


def _another_prod_stack(world: Any) -> str:
    """A copy of the API deployed to `prod` too: the name and the stage no longer tell."""
    gw = world.client("apigateway")
    rest = gw.create_rest_api(name=API_NAME)["id"]
    root = gw.get_resources(restApiId=rest)["items"][0]["id"]
    gw.put_method(restApiId=rest, resourceId=root, httpMethod="GET", authorizationType="NONE")
    gw.put_integration(restApiId=rest, resourceId=root, httpMethod="GET", type="MOCK")
    gw.create_deployment(restApiId=rest, stageName="prod")
    return rest


def test_day1_journals_the_api_of_its_stage_and_the_staging_copy_stays_untouched(
    world, make_ctx, runbook
):
    gw = world.client("apigateway")
    named = apis_named(gw, API_NAME)
    assert len(named) == 2 and {c.stages for c in named} == {("prod",), ("staging",)}
    prod, staging = prod_api(world), staging_api(world)
    staging_before = methods_of(gw, staging)

    ctx, _ = make_ctx("inventory", world)
    run(ctx, "inventory_diff", {})
    assert ctx.journal.api_id == prod

    dctx, _ = make_ctx("delete-legacy-routes", world, journal=ctx.journal)
    go(dctx.journal)
    s = run(dctx, "delete_api_routes", {})
    assert s["deleted_routes"] and dctx.cursors["api_id"] == prod
    assert not {k for k in methods_of(gw, prod) if k in s["deleted_routes"]}
    rctx, _ = make_ctx("rollback-cleanup#2", world, journal=ctx.journal)
    run(rctx, "restore_api_routes", {"delete_step": "delete-legacy-routes"})
    assert set(s["deleted_routes"]) <= set(methods_of(gw, prod))
    # the other API of the same name: not a route, not a deployment changed
    assert methods_of(gw, staging) == staging_before
    stages = gw.get_stages(restApiId=staging)["item"]
    assert len(stages) == 1 and len(gw.get_deployments(restApiId=staging)["items"]) == 1


def test_more_than_one_match_is_refused_listing_each_then_a_pinned_id_is_taken(
    world, make_ctx, runbook
):
    other = _another_prod_stack(world)
    ctx, _ = make_ctx("inventory", world)
    with pytest.raises(ApiNotResolved) as refused:
        run(ctx, "inventory_diff", {})
    text = str(refused.value)
    named = apis_named(world.client("apigateway"), API_NAME)
    assert "2 REST APIs named" in text and "pin" in text
    for c in named:  # each one's id, stages and creation date
        assert c.id in text and c.created and c.created in text
    assert "stages: prod" in text and "stages: staging" in text
    assert ctx.journal.api_id is None

    # pinned by the runbook: taken, and journaled
    pinned = next(c.id for c in named if "prod" in c.stages and c.id != other)
    pctx, _ = make_ctx("inventory", world, rb=_pinned(runbook, pinned))
    run(pctx, "inventory_diff", {})
    assert pctx.journal.api_id == pinned

    # a pin that does not fit the name and stage is refused, never used
    bad, _ = make_ctx("inventory", world, rb=_pinned(runbook, staging_api(world)))
    with pytest.raises(ApiNotResolved, match="has no stage prod"):
        run(bad, "inventory_diff", {})


def test_later_steps_use_the_journaled_id_even_when_a_copy_appears(world, make_ctx, runbook):
    ctx, _ = make_ctx("inventory", world)
    run(ctx, "inventory_diff", {})
    prod = ctx.journal.api_id
    assert prod == prod_api(world)
    other = _another_prod_stack(world)  # a new stack deployed to prod after Day 1
    gw = world.client("apigateway")
    other_before = methods_of(gw, other)
    fctx, _ = make_ctx("deploy-feature-flags", world, journal=ctx.journal)
    run(fctx, "set_flags", {"values": {"DUAL_WRITE_ENABLED": "false"}})  # reads integrations
    dctx, _ = make_ctx("delete-legacy-routes", world, journal=ctx.journal)
    go(dctx.journal)
    s = run(dctx, "delete_api_routes", {})
    assert s["deleted_routes"] and dctx.cursors["api_id"] == prod
    assert methods_of(gw, other) == other_before
