"""Inventory diff (plan section 1): live tables, functions, log groups and API routes against
`runbook.inventory`.

Table counts are exact (paginated Scan Select=COUNT), never the lagging ItemCount. With
`expect_removed`, deprecated resources are expected to be gone: their absence is not "missing",
their presence is reported as `still_present`.

Artifact `inventory-<step>.json`:
    {"tables": {name: {"expected": n, "live": n | -1, "status": ...}}, "missing": [...],
     "unexpected": [...], "count_differences": [...], "still_present": [...]}
Summary: {tables_live, functions_live, log_groups_live, routes_live, missing, unexpected,
count_differences, still_present, artifact}.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from engine import dynamo
from engine.actions.cleanup import find_api, resources_by_path
from engine.context import Action, ActionContext, PlannedCall
from engine.model import Runbook


class InventoryParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expect_removed: bool = False


def _paginate(client: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
    return [
        item for page in client.get_paginator(operation).paginate(**kwargs) for item in page[key]
    ]


def _diff(
    kind: str,
    expected: dict[str, bool],
    live: set[str],
    expect_removed: bool,
    out: dict[str, list[str]],
) -> None:
    """expected: name -> deprecated."""
    for name, deprecated in sorted(expected.items()):
        gone_ok = expect_removed and deprecated
        if name not in live and not gone_ok:
            out["missing"].append(f"{kind} {name}")
        elif name in live and gone_ok:
            out["still_present"].append(f"{kind} {name}")
    out["unexpected"] += [f"{kind} {n}" for n in sorted(live - set(expected))]


def run(ctx: ActionContext, p: InventoryParams) -> dict[str, Any]:
    inv = ctx.runbook.inventory
    ddb = ctx.client("dynamodb")
    out: dict[str, list[str]] = {
        "missing": [],
        "unexpected": [],
        "count_differences": [],
        "still_present": [],
    }
    live_tables = set(_paginate(ddb, "list_tables", "TableNames"))
    _diff("table", {t.name: t.deprecate for t in inv.tables}, live_tables, p.expect_removed, out)
    tables: dict[str, Any] = {}
    for n, spec in enumerate(inv.tables, 1):
        ctx.clock.check()
        entry: dict[str, Any] = {"expected": spec.items, "live": -1, "deprecated": spec.deprecate}
        if spec.name in live_tables:
            ctx.progress(spec.name, 0, 1)
            count = dynamo.count_items(ddb, spec.name, clock=ctx.clock)
            entry["live"] = count
            if count != spec.items:
                out["count_differences"].append(
                    f"table {spec.name}: plan {spec.items}, live {count}"
                )
            ctx.progress(spec.name, 1, 1)
        tables[spec.name] = entry
        ctx.progress("tables", n, len(inv.tables))
    lam = ctx.client("lambda")
    live_functions = {f["FunctionName"] for f in _paginate(lam, "list_functions", "Functions")}
    _diff(
        "function",
        {f.name: f.deprecate for f in inv.functions},
        live_functions,
        p.expect_removed,
        out,
    )
    logs = ctx.client("logs")
    live_groups = {g["logGroupName"] for g in _paginate(logs, "describe_log_groups", "logGroups")}
    deprecated_fns = {f.name for f in inv.functions if f.deprecate}
    expected_groups = {
        inv.log_group_prefix + f.name: f.name in deprecated_fns for f in inv.functions
    }
    expected_groups.update({g: False for g in inv.extra_log_groups})
    _diff("log-group", expected_groups, live_groups, p.expect_removed, out)
    routes_live = 0
    if inv.api is not None:
        gw = ctx.client("apigateway")
        api_id = find_api(gw, inv.api.name)
        live_routes: set[str] = set()
        if api_id is None:
            out["missing"].append(f"api {inv.api.name}")
        else:
            for path, res in resources_by_path(gw, api_id).items():
                live_routes |= {f"{m} {path}" for m in res.get("resourceMethods", {}) or {}}
        expected_routes = {f"{m} {r.path}": r.deprecate for r in inv.api.routes for m in r.methods}
        routes_live = len(live_routes)
        if api_id is not None:
            _diff("route", expected_routes, live_routes, p.expect_removed, out)
    for key in out:
        for line in out[key][:20]:
            ctx.log(f"inventory {key.replace('_', ' ')}: {line}", "warning")
    path = ctx.artifact(f"inventory-{ctx.step_id}.json")
    path.write_text(json.dumps({"tables": tables, **out}, indent=2, sort_keys=True))
    ctx.checkpoint(force=True)
    return {
        "tables_live": len(live_tables),
        "functions_live": len(live_functions),
        "log_groups_live": len(live_groups),
        "routes_live": routes_live,
        "missing": len(out["missing"]),
        "unexpected": len(out["unexpected"]),
        "count_differences": len(out["count_differences"]),
        "still_present": len(out["still_present"]),
        "expect_removed": p.expect_removed,
        "artifact": path.name,
    }


def plan(rb: Runbook, p: InventoryParams) -> list[PlannedCall]:
    calls = [PlannedCall("dynamodb", "ListTables", "*")]
    calls += [
        PlannedCall("dynamodb", "Scan", t.name, "Select=COUNT, exact") for t in rb.inventory.tables
    ]
    calls += [
        PlannedCall("lambda", "ListFunctions", "*"),
        PlannedCall("logs", "DescribeLogGroups", "*"),
    ]
    if rb.inventory.api:
        calls.append(PlannedCall("apigateway", "GetResources", rb.inventory.api.name))
    return calls


ACTIONS = (
    Action(
        "inventory_diff",
        InventoryParams,
        run,
        plan,
        "Live tables (exact counts), functions, log groups, API routes vs the plan's inventory",
    ),
)
