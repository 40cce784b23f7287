"""API Gateway lookups shared by the route actions and by how a function is invoked.

REST API names are not unique: an account often holds a staging and a prod stack of the same
API. The runbook's API is resolved by identity (`resolve_api`): the APIs of its name that have
its stage, exactly one, or the id the runbook pins; never the first of a name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ApiNotResolved(RuntimeError):
    """The runbook's REST API is not exactly one API of the account."""


@dataclass(frozen=True)
class ApiCandidate:
    id: str
    name: str
    stages: tuple[str, ...]
    created: str

    def describe(self) -> str:
        stages = ", ".join(self.stages) or "no stage"
        return f"{self.id} (stages: {stages}; created {self.created or 'unknown'})"


def apis_named(gw: Any, name: str) -> list[ApiCandidate]:
    """Every REST API of that name, with its stages and creation date."""
    out = []
    for page in gw.get_paginator("get_rest_apis").paginate():
        for api in page.get("items", []):
            if api["name"] != name:
                continue
            stages = gw.get_stages(restApiId=api["id"]).get("item", [])
            created = api.get("createdDate")
            out.append(
                ApiCandidate(
                    api["id"],
                    name,
                    tuple(sorted(s["stageName"] for s in stages)),
                    created.isoformat(timespec="seconds") if created else "",
                )
            )
    return sorted(out, key=lambda c: (c.created, c.id))


def resolve_api(gw: Any, name: str, stage: str, pinned: str | None = None) -> str:
    """The one REST API named `name` that has stage `stage`, or the pinned id (checked: it
    exists, has that name and that stage). ApiNotResolved otherwise, listing every API of the
    name with its id, stages and creation date."""
    if pinned:
        try:
            got = gw.get_rest_api(restApiId=pinned)
        except gw.exceptions.NotFoundException as exc:
            raise ApiNotResolved(f"REST API {pinned} (pinned by the runbook) not found") from exc
        if got.get("name") != name:
            raise ApiNotResolved(
                f"REST API {pinned} (pinned by the runbook) is named {got.get('name')!r}, "
                f"not {name!r}"
            )
        stages = {s["stageName"] for s in gw.get_stages(restApiId=pinned).get("item", [])}
        if stage not in stages:
            raise ApiNotResolved(f"REST API {pinned} (pinned by the runbook) has no stage {stage}")
        return pinned
    named = apis_named(gw, name)
    matching = [c for c in named if stage in c.stages]
    if len(matching) == 1:
        return matching[0].id
    listed = "; ".join(c.describe() for c in named)
    if not matching:
        where = f": {listed}" if named else ""
        raise ApiNotResolved(
            f"no REST API named {name!r} has a stage {stage} ({len(named)} of that name{where})"
        )
    raise ApiNotResolved(
        f"{len(matching)} REST APIs named {name!r} have a stage {stage}: {listed}; pin the "
        'one to migrate in the runbook ([inventory.api] id = "...")'
    )


def resources_by_path(gw: Any, api_id: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for page in gw.get_paginator("get_resources").paginate(restApiId=api_id):
        for r in page.get("items", []):
            out[r["path"]] = r
    return out


def deployed_routes(gw: Any, api_id: str, stage: str) -> set[str] | None:
    """The routes ("GET /x") the stage's deployment serves, from its `apiSummary`; None when
    the answer has none (an emulator), so nothing can be said about undeployed changes."""
    try:
        deployment = gw.get_stage(restApiId=api_id, stageName=stage).get("deploymentId")
    except gw.exceptions.NotFoundException:
        return None
    if not deployment:
        return None
    got = gw.get_deployment(restApiId=api_id, deploymentId=deployment, embed=["apisummary"])
    summary = got.get("apiSummary")
    if summary is None:
        return None
    return {f"{method} {path}" for path, methods in summary.items() for method in methods}


def undeployed(live: set[str], deployed: set[str]) -> list[str]:
    """Pure: the route changes no deployment holds ("+ GET /x": added, "- PUT /y": removed)."""
    return [f"+ {r}" for r in sorted(live - deployed)] + [f"- {r}" for r in sorted(deployed - live)]
