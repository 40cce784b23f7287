"""Reading a seeded rehearsal world the way a run must: by identity, never the first API of
a name (the world holds a staging stack of the same API, issue 19)."""

from __future__ import annotations

from typing import Any

from engine.aws.apigateway import apis_named, resolve_api

API_NAME = "construction-expenses-api"  # the bundled runbook's [inventory.api]


def prod_api(conn: Any, name: str = API_NAME, stage: str = "prod") -> str:
    """The id of the API a run migrates: the one of that name with that stage."""
    return resolve_api(conn.client("apigateway"), name, stage)


def staging_api(conn: Any, name: str = API_NAME, stage: str = "staging") -> str:
    """The id of the world's other API of the same name (it must stay untouched)."""
    found = [c.id for c in apis_named(conn.client("apigateway"), name) if stage in c.stages]
    assert len(found) == 1, found
    return found[0]
