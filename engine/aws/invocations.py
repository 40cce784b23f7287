"""How a Lambda function is actually invoked: by API Gateway integrations and event sources.

Environment variables only change `$LATEST`; a published version is immutable. So a flag set
on the function reaches the code that runs only when the invoker calls the function
unqualified ($LATEST), or through an alias that is moved to a version published after the
change. An invoker that names a fixed version number never sees a flag change.

`discover` reads the REST API's integration URIs and the account's event source mappings and
returns, per function name, the set of qualifiers it is invoked with:
    "" (unqualified / $LATEST), "alias:<name>", "version:<n>", or "unknown:<text>"
(e.g. a stage variable in the URI, which only the stage knows).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.aws.apigateway import resources_by_path

_FUNCTION_ARN = re.compile(
    r"arn:aws[\w-]*:lambda:[\w-]+:\d{12}:function:(?P<name>[A-Za-z0-9_-]+)(?::(?P<qual>[^/]+))?"
)

UNQUALIFIED = ""


def qualifier_kind(qualifier: str | None) -> str:
    """'' for unqualified/$LATEST, 'version:N', 'alias:NAME', or 'unknown:TEXT'."""
    if not qualifier or qualifier == "$LATEST":
        return UNQUALIFIED
    if qualifier.isdigit():
        return f"version:{qualifier}"
    if re.fullmatch(r"[A-Za-z0-9_-]+", qualifier):  # alias names are never all digits
        return f"alias:{qualifier}"
    return f"unknown:{qualifier}"


def parse_function_arn(text: str) -> tuple[str, str] | None:
    """(function name, qualifier kind) from a function ARN or an API Gateway Lambda URI."""
    match = _FUNCTION_ARN.search(text or "")
    if match is None:
        return None
    return match["name"], qualifier_kind(match["qual"])


@dataclass
class Invocations:
    """Per function: qualifier kind -> where it is invoked from (for the operator)."""

    by_function: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def add(self, fn: str, kind: str, source: str) -> None:
        self.by_function.setdefault(fn, {}).setdefault(kind, []).append(source)

    def aliases(self, fn: str) -> list[str]:
        return sorted(
            k.removeprefix("alias:") for k in self.by_function.get(fn, {}) if k.startswith("alias:")
        )

    def fixed_versions(self, fn: str) -> dict[str, list[str]]:
        return {
            k.removeprefix("version:"): v
            for k, v in sorted(self.by_function.get(fn, {}).items())
            if k.startswith("version:")
        }

    def unknown(self, fn: str) -> dict[str, list[str]]:
        return {k: v for k, v in self.by_function.get(fn, {}).items() if k.startswith("unknown:")}

    def describe(self, fn: str) -> list[str]:
        """'unqualified', 'alias live', 'version 3' ... for the inventory artifact."""
        out = []
        for kind, sources in sorted(self.by_function.get(fn, {}).items()):
            label = "unqualified ($LATEST)" if kind == UNQUALIFIED else kind.replace(":", " ", 1)
            out.append(f"{label} from {', '.join(sorted(set(sources))[:5])}")
        return out


def api_integrations(gw: Any, api_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, integration) for every method of the REST API that has one."""

    out = []
    for path, res in sorted(resources_by_path(gw, api_id).items()):
        for method in sorted(res.get("resourceMethods") or {}):
            try:
                integration = gw.get_integration(
                    restApiId=api_id, resourceId=res["id"], httpMethod=method
                )
            except gw.exceptions.NotFoundException:
                continue
            if integration.get("type"):
                out.append((method, path, integration))
    return out


Integration = tuple[str, str, dict[str, Any]]  # method, path, get_integration's answer


def discover(
    lam: Any, integrations: Iterable[Integration], functions: Iterable[str]
) -> Invocations:
    """How each of `functions` is invoked, from the API's integrations and event sources."""
    wanted = set(functions)
    found = Invocations()
    for method, path, integration in integrations:
        uri = integration.get("uri", "") or ""
        if "${stageVariables." in uri:
            for fn in wanted:
                if fn in uri:
                    found.add(fn, "unknown:stage variable", f"{method} {path}")
            continue
        parsed = parse_function_arn(uri)
        if parsed and parsed[0] in wanted:
            found.add(parsed[0], parsed[1], f"{method} {path}")
    for page in lam.get_paginator("list_event_source_mappings").paginate():
        for mapping in page.get("EventSourceMappings", []):
            parsed = parse_function_arn(mapping.get("FunctionArn", ""))
            if parsed and parsed[0] in wanted:
                source = mapping.get("EventSourceArn") or mapping.get("UUID", "?")
                found.add(parsed[0], parsed[1], f"event source {source}")
    return found
