"""What DeleteFunction takes with it, archived before it: every published version, every alias
(with its routing weights), the resource policy of the function and of each alias (a policy is
per qualifier), the function URL of each, and the event source mappings.

Event source mappings survive a DeleteFunction on AWS and then point at nothing (a stream or
queue polled for a function that is gone). delete_functions deletes them after archiving and
after the function: restore_functions creates them again, on the source as it is then (a
restored table has a new stream ARN)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from engine.aws.event_source_mappings import MAPPING_KEYS


def _pages(lam: Any, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in lam.get_paginator(operation).paginate(**kwargs):
        out += page[key]  # always there (engine/aws/complete_responses.py)
    return out


def published_versions(lam: Any, fn: str) -> list[dict[str, Any]]:
    """The published versions (not $LATEST), oldest first, each with its configuration as
    ListVersionsByFunction gives it (number, description, code SHA, settings); of its
    environment only the names (the values may be secrets)."""
    found = []
    for v in _pages(lam, "list_versions_by_function", "Versions", FunctionName=fn):
        if v["Version"] == "$LATEST":
            continue
        version = {k: val for k, val in v.items() if k != "Environment"}
        version["EnvironmentNames"] = sorted((v.get("Environment") or {}).get("Variables") or {})
        found.append(version)
    return sorted(found, key=lambda v: int(v["Version"]))


def aliases(lam: Any, fn: str) -> list[dict[str, Any]]:
    return [
        {"Name": a["Name"], "FunctionVersion": a["FunctionVersion"],
         "Description": a.get("Description", ""),
         "RoutingConfig": a.get("RoutingConfig") or {}}
        for a in _pages(lam, "list_aliases", "Aliases", FunctionName=fn)
    ]  # fmt: skip


def policy(lam: Any, fn: str, qualifier: str | None) -> dict[str, Any]:
    kwargs = {"FunctionName": fn, **({"Qualifier": qualifier} if qualifier else {})}
    try:
        return json.loads(lam.get_policy(**kwargs)["Policy"])
    except lam.exceptions.ResourceNotFoundException:
        return {}


def url_config(lam: Any, fn: str, qualifier: str | None) -> dict[str, Any]:
    kwargs = {"FunctionName": fn, **({"Qualifier": qualifier} if qualifier else {})}
    try:
        got = lam.get_function_url_config(**kwargs)
    except lam.exceptions.ResourceNotFoundException:
        return {}
    keep = ("FunctionUrl", "AuthType", "Cors", "InvokeMode")
    return {k: got[k] for k in keep if got.get(k) not in (None, {}, "")}


def mappings(lam: Any, fn: str, qualifiers: list[str]) -> list[dict[str, Any]]:
    """Every event source mapping of the function or one of its aliases (by UUID, once)."""
    out: dict[str, dict[str, Any]] = {}
    for name in [fn, *(f"{fn}:{q}" for q in qualifiers)]:
        for m in _pages(lam, "list_event_source_mappings", "EventSourceMappings",
                        FunctionName=name):  # fmt: skip
            out.setdefault(m["UUID"], {k: m[k] for k in MAPPING_KEYS if k in m})
    return list(out.values())


def archive_links(lam: Any, fn: str) -> dict[str, Any]:
    """The archive record's versions, aliases, policies, urls and mappings of `fn`."""
    found_aliases = aliases(lam, fn)
    names = [a["Name"] for a in found_aliases]
    qualifiers: list[str | None] = [None, *names]
    policies = {q or "": p for q in qualifiers if (p := policy(lam, fn, q))}
    urls = {q or "": u for q in qualifiers if (u := url_config(lam, fn, q))}
    return {
        "versions": published_versions(lam, fn),
        "aliases": found_aliases,
        "policies": policies,
        "urls": urls,
        "mappings": mappings(lam, fn, names),
    }


def delete_mappings(lam: Any, record: dict[str, Any]) -> list[str]:
    """Delete the archived mappings of a deleted function (gone ones count); their UUIDs."""
    deleted = []
    for m in record.get("mappings", []):
        with contextlib.suppress(lam.exceptions.ResourceNotFoundException):
            lam.delete_event_source_mapping(UUID=m["UUID"])
        deleted.append(m["UUID"])
    return deleted
