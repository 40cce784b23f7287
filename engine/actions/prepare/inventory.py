"""Inventory diff (plan section 1): live tables, functions, log groups and API routes against
`runbook.inventory`.

Table counts are exact (paginated Scan Select=COUNT), never the lagging ItemCount. With
`expect_removed`, deprecated resources are expected to be gone: their absence is not "missing",
their presence is reported as `still_present`.

The API: the runbook's stage must exist, and every route method the plan keeps must have an
integration (pointing at one of the route's functions, when the runbook names them).

How each flag function is invoked (engine/aws/invocations.py): unqualified, through an alias, or by
a fixed version number. A flag (environment variable) never reaches a published version, so a
function invoked by a version number, an unknown qualifier, or an API problem is a finding a
human must accept or fix: the step raises NeedsAcceptance after writing the artifact (the run
waits at it; `run` checks again, `ack` accepts).

Day 1 also reports what a Phase 5 rollback will need (engine/actions/prepare/legacy_inventory.py):
each deprecated function's runtime with its lifecycle dates, role, KMS key, layers and VPC, and
the event source mappings that read a legacy table's stream.

Artifact `inventory-<step>.json`:
    {"tables": {name: {"expected": n, "live": n | -1, "status": ...}}, "missing": [...],
     "unexpected": [...], "count_differences": [...], "still_present": [...],
     "api_problems": [...], "invocations": {fn: ["alias live from GET /x", ...]},
     "needs_acceptance": [...], "deprecated_functions": {fn: {runtime, lifecycle, role, ...}},
     "legacy_stream_mappings": [{uuid, function, table, stream, state}]}
Summary: {tables_live, functions_live, log_groups_live, routes_live, missing, unexpected,
count_differences, still_present, api_problems, needs_acceptance, invocations, artifact}.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.actions.api_identity import api_id_of
from engine.actions.prepare import legacy_inventory
from engine.aws import dynamo, invocations
from engine.aws.apigateway import (
    ApiNotResolved,
    apis_named,
    deployed_routes,
    resources_by_path,
    undeployed,
)
from engine.aws.environment import sealed_environment
from engine.core.context import Action, ActionContext, NeedsAcceptance, PlannedCall
from engine.runbook.model import ApiSpec, Runbook
from engine.state.records import Summary


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


class InventorySummary(Summary):
    tables_live: int = 0
    functions_live: int = 0
    log_groups_live: int = 0
    routes_live: int = 0
    missing: int = 0
    unexpected: int = 0
    count_differences: int = 0
    still_present: int = 0
    api_problems: int = 0
    invocations: dict[str, list[str]] = {}  # flag functions and how each is invoked
    needs_acceptance: list[str] = []  # findings a human must accept (at most 20)
    # deprecated functions on a deprecated runtime, with its dates (at most 20)
    deprecated_runtimes: list[str] = []
    # mappings that read a legacy table's stream (at most 20)
    legacy_stream_mappings: list[str] = []
    expect_removed: bool = False
    artifact: str = ""


def run(ctx: ActionContext, p: InventoryParams) -> InventorySummary:
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
    configs = {f["FunctionName"]: f for f in _paginate(lam, "list_functions", "Functions")}
    live_functions = set(configs)
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
    out["api_problems"] = []
    integrations: list[invocations.Integration] = []
    if inv.api is not None:
        gw = ctx.client("apigateway")
        api_id = None
        try:
            api_id = api_id_of(ctx)  # resolved by name and stage (or pinned), journaled
        except ApiNotResolved as exc:
            named = apis_named(gw, inv.api.name)
            if inv.api.id or ctx.journal.api_id or any(inv.api.stage in c.stages for c in named):
                raise  # more than one, or not the pinned one: never a guess
            out["missing"].append(f"api {inv.api.name}")
            out["api_problems"].append(f"REST API {inv.api.name} not found: {exc}")
        live_routes: set[str] = set()
        if api_id is not None:
            for path, res in resources_by_path(gw, api_id).items():
                live_routes |= {f"{m} {path}" for m in res.get("resourceMethods", {}) or {}}
            integrations = invocations.api_integrations(gw, api_id)
            out["api_problems"] += _api_problems(
                gw, api_id, inv.api, integrations, live_routes, p.expect_removed
            )
        expected_routes = {f"{m} {r.path}": r.deprecate for r in inv.api.routes for m in r.methods}
        routes_live = len(live_routes)
        if api_id is not None:
            _diff("route", expected_routes, live_routes, p.expect_removed, out)
    flagged = [f for f in ctx.runbook.flags.functions if f in live_functions]
    found = invocations.discover(lam, integrations, flagged)
    described = {fn: found.describe(fn) for fn in flagged}
    needs = list(out["api_problems"]) + _invocation_problems(found, flagged)
    needs += _sealed_environments(ctx, lam, inv, live_functions)
    for fn in flagged:
        if not described[fn]:
            ctx.log(f"{fn}: not invoked by the API or an event source mapping", "warning")
        for line in described[fn]:
            ctx.log(f"{fn}: invoked {line}")
    for key in out:
        for line in out[key][:20]:
            ctx.log(f"inventory {key.replace('_', ' ')}: {line}", "warning")
    # what a Phase 5 rollback will need (runtimes AWS blocks, roles, streams' readers)
    legacy_fns = legacy_inventory.deprecated_functions(
        ctx.runbook, configs, datetime.now(UTC).date()
    )
    mappings = legacy_inventory.legacy_stream_mappings(ddb, lam, inv.select_tables("@deprecated"))
    runtime_lines = legacy_inventory.runtime_findings(legacy_fns)
    mapping_lines = legacy_inventory.mapping_findings(mappings)
    for line in runtime_lines + mapping_lines:
        ctx.log(line, "warning")
    path = ctx.artifact(f"inventory-{ctx.step_id}.json")
    path.write_text(
        json.dumps(
            {
                "tables": tables,
                **out,
                "invocations": described,
                "needs_acceptance": needs,
                "deprecated_functions": legacy_fns,
                "legacy_stream_mappings": mappings,
            },
            indent=2,
            sort_keys=True,
        )
    )
    ctx.checkpoint(force=True)
    summary = InventorySummary(
        tables_live=len(live_tables),
        functions_live=len(live_functions),
        log_groups_live=len(live_groups),
        routes_live=routes_live,
        missing=len(out["missing"]),
        unexpected=len(out["unexpected"]),
        count_differences=len(out["count_differences"]),
        still_present=len(out["still_present"]),
        api_problems=len(out["api_problems"]),
        invocations={fn: lines for fn, lines in described.items() if lines},
        needs_acceptance=needs[:20],
        deprecated_runtimes=runtime_lines[:20],
        legacy_stream_mappings=mapping_lines[:20],
        expect_removed=p.expect_removed,
        artifact=path.name,
    )
    if needs:
        for line in needs[:20]:
            ctx.log(f"needs a decision: {line}", "error")
        raise NeedsAcceptance(
            f"{len(needs)} finding(s) need a human: "
            + "; ".join(needs[:3])
            + (" ..." if len(needs) > 3 else "")
            + f" (details in {path.name}); fix them and run again, or accept with ack",
            summary,
        )
    return summary


def _invocation_problems(found: invocations.Invocations, functions: list[str]) -> list[str]:
    """Invokers a flag cannot reach: a fixed version number, or a qualifier nobody can tell."""
    problems = []
    for fn in functions:
        for version, sources in found.fixed_versions(fn).items():
            problems.append(
                f"{fn} is invoked by fixed version {version} ({', '.join(sources[:3])}): "
                "feature flags (environment variables) never reach a published version; "
                "point the invoker at an alias or the unqualified function"
            )
        for kind, sources in found.unknown(fn).items():
            problems.append(
                f"{fn} is invoked with {kind.removeprefix('unknown:')} "
                f"({', '.join(sources[:3])}): cannot tell whether flags reach it"
            )
    return problems


def _sealed_environments(ctx: ActionContext, lam: Any, inv: Any, live: set[str]) -> list[str]:
    """Flag functions (their environment is rewritten) and deprecated ones (archived, then
    deleted) whose environment is under a customer KMS key or could not be read."""
    touched = [f for f in ctx.runbook.flags.functions if f in live]
    touched += [
        f.name for f in inv.functions if f.deprecate and f.name in live and f.name not in touched
    ]
    problems = []
    for fn in touched:
        ctx.clock.check()
        reason = sealed_environment(lam.get_function_configuration(FunctionName=fn))
        if reason:
            problems.append(
                f"{fn}: {reason}: flags are merged into and archives keep every variable only "
                "while the runbook's role can decrypt it (it never writes a flags-only "
                "environment nor archives an empty one); check the key's policy, then accept"
            )
    return problems


def _api_problems(
    gw: Any,
    api_id: str,
    api: ApiSpec,
    integrations: list[invocations.Integration],
    live_routes: set[str],
    expect_removed: bool,
) -> list[str]:
    """The stage exists and serves what the API holds; every kept route method has an
    integration to one of its functions."""
    problems = []
    try:
        gw.get_stage(restApiId=api_id, stageName=api.stage)
    except gw.exceptions.NotFoundException:
        problems.append(f"stage {api.stage} of REST API {api.name} does not exist")
    deployed = deployed_routes(gw, api_id, api.stage)
    if deployed is not None and (changes := undeployed(live_routes, deployed)):
        problems.append(
            f"REST API {api.name} has changes no deployment of stage {api.stage} holds "
            f"({', '.join(changes[:6])}{', ...' if len(changes) > 6 else ''}): the route "
            "clean-up's redeploy on Day 3 would publish them; deploy or revert them first"
        )
    by_route = {f"{m} {path}": integ for m, path, integ in integrations}
    for route in api.routes:
        if expect_removed and route.deprecate:
            continue
        for method in route.methods:
            key = f"{method} {route.path}"
            if key not in live_routes:
                problems.append(f"route {key} does not exist")
                continue
            integ = by_route.get(key)
            if integ is None:
                problems.append(f"route {key} has no integration")
                continue
            parsed = invocations.parse_function_arn(integ.get("uri", "") or "")
            if route.functions and parsed and parsed[0] not in route.functions:
                problems.append(
                    f"route {key} invokes {parsed[0]}, not {' or '.join(route.functions)}"
                )
    return problems


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
        api = rb.inventory.api
        calls.append(PlannedCall("apigateway", "GetResources", api.name))
        calls.append(PlannedCall("apigateway", "GetStage", f"{api.name} {api.stage}"))
        calls.append(PlannedCall("apigateway", "GetDeployment", api.name, "what the stage serves"))
        calls.append(PlannedCall("apigateway", "GetIntegration", api.name, "every method"))
    calls.append(
        PlannedCall(
            "lambda",
            "ListEventSourceMappings",
            "*",
            "how flag functions are invoked; what reads a legacy table's stream",
        )
    )
    return calls


ACTIONS = (
    Action(
        "inventory_diff",
        InventoryParams,
        run,
        plan,
        "Live tables (exact counts), functions, log groups, API routes vs the plan's inventory",
        summary=InventorySummary,
    ),
)
