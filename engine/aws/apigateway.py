"""API Gateway lookups shared by the route actions and by how a function is invoked."""

from __future__ import annotations

from typing import Any


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
