"""What a new user checks after `runbook rollback phase5` (issue 19, "Done when"): every table
and function Phase 5 deleted is back, with its tags less `aws:`, its aliases, permissions and
event source mappings, as its archive recorded them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _archive(artifacts: Path, step: str) -> Path:
    return artifacts / f"archive-{step}"


def assert_phase5_restored(conn: Any, steps: dict[str, Any], artifacts: Path) -> dict[str, int]:
    """Asserts; returns counts of what was compared (functions, aliases, statements, mappings,
    tables)."""
    lam, ddb = conn.client("lambda"), conn.client("dynamodb")
    counts = {"functions": 0, "aliases": 0, "statements": 0, "mappings": 0, "tables": 0}
    folder = _archive(artifacts, "delete-deprecated-functions")
    for fn in steps["delete-deprecated-functions"]["summary"]["deleted"]:
        record = json.loads((folder / f"{fn}.json").read_text())
        live = lam.get_function(FunctionName=fn)
        wanted = {k: v for k, v in record["tags"].items() if not k.startswith("aws:")}
        assert live.get("Tags", {}) == wanted, fn
        aliases = {a["Name"] for a in lam.list_aliases(FunctionName=fn)["Aliases"]}
        assert aliases == {a["Name"] for a in record["aliases"]}, fn
        for qualifier, policy in record["policies"].items():
            kwargs = {"FunctionName": fn, **({"Qualifier": qualifier} if qualifier else {})}
            sids = {st["Sid"] for st in json.loads(lam.get_policy(**kwargs)["Policy"])["Statement"]}
            for st in policy["Statement"]:
                assert st["Sid"] in sids, (fn, qualifier, st["Sid"])
                counts["statements"] += 1
        names = [fn, *(f"{fn}:{a}" for a in aliases)]
        live_mappings = {
            m["UUID"]: m
            for name in names
            for m in lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]
        }
        live_mappings.update(
            {
                m["UUID"]: m
                for m in lam.list_event_source_mappings()["EventSourceMappings"]
                if m["FunctionArn"].split(":")[6] == fn
            }
        )
        assert len(live_mappings) == len(record["mappings"]), fn
        for m in live_mappings.values():
            table = m["EventSourceArn"].split(":table/")[1].split("/stream/")[0]
            latest = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
            assert m["EventSourceArn"] == latest, (fn, "reads an old stream")
        counts["functions"] += 1
        counts["aliases"] += len(aliases)
        counts["mappings"] += len(live_mappings)
    tables = _archive(artifacts, "delete-deprecated-tables")
    for table in steps["delete-deprecated-tables"]["summary"]["deleted"]:
        record = json.loads((tables / f"{table}.table.json").read_text())
        arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
        live = ddb.list_tags_of_resource(ResourceArn=arn)["Tags"]
        assert live == [t for t in record["tags"] if not t["Key"].startswith("aws:")], table
        counts["tables"] += 1
    return counts


def alias_integrations(conn: Any, api_id: str, paths: set[str]) -> list[str]:
    """Every integration on `paths` of the API that invokes a function through an alias,
    checked to work: the alias exists, and its policy lets this API invoke it. Returns
    "METHOD path -> fn:alias"."""
    gw, lam = conn.client("apigateway"), conn.client("lambda")
    region = conn.client("sts").meta.region_name
    checked = []
    for res in gw.get_resources(restApiId=api_id, embed=["methods"])["items"]:
        if res["path"] not in paths:
            continue
        for method in res.get("resourceMethods") or {}:
            uri = gw.get_integration(restApiId=api_id, resourceId=res["id"], httpMethod=method)
            arn = uri.get("uri", "").split("/functions/")[-1].removesuffix("/invocations")
            parts = arn.split(":")
            if len(parts) < 8:
                continue  # unqualified
            fn, alias = parts[6], parts[7]
            assert lam.get_alias(FunctionName=fn, Name=alias)["Name"] == alias
            policy = json.loads(lam.get_policy(FunctionName=fn, Qualifier=alias)["Policy"])
            sources = [
                (st.get("Condition", {}).get("ArnLike", {}) or {}).get("AWS:SourceArn", "")
                for st in policy["Statement"]
            ]
            assert any(f":execute-api:{region}:" in s and f":{api_id}/" in s for s in sources), (
                fn,
                alias,
                sources,
            )
            checked.append(f"{method} {res['path']} -> {fn}:{alias}")
    return checked
