"""Day 1's account of what a Phase 5 rollback will need, for the deprecated resources.

- Each deprecated function's runtime, and its lifecycle dates when the runbook's
  `[[lambda_runtimes]]` lists it (AWS blocks CreateFunction on a runtime some months after its
  deprecation: deleted, the function cannot come back as it was); its role (a restore passes
  it back), KMS key, layers and VPC (what a restore needs beyond the Lambda API).
- The event source mappings that read a legacy table's stream: DeleteTable disables the
  stream, and a restored table has a new stream ARN (a restore re-points them).

`deprecated_functions` is pure; `legacy_stream_mappings` reads the account."""

from __future__ import annotations

from datetime import date
from typing import Any

from engine.runbook import runtimes
from engine.runbook.model import Runbook


def deprecated_functions(
    rb: Runbook, configs: dict[str, dict[str, Any]], today: date
) -> dict[str, dict[str, Any]]:
    """{function: {runtime, lifecycle, deprecated_runtime, blocks_create, role, kms_key,
    layers, vpc}} for each live deprecated function (ListFunctions' configurations)."""
    out: dict[str, dict[str, Any]] = {}
    for fn in rb.inventory.select_functions("@deprecated"):
        conf = configs.get(fn)
        if conf is None:
            continue
        runtime = conf.get("Runtime", "")
        found = runtimes.lifecycle_of(rb.lambda_runtimes, runtime)
        out[fn] = {
            "runtime": runtime,
            "lifecycle": runtimes.describe(found) if found else "",
            "deprecated_runtime": runtimes.is_deprecated(rb.lambda_runtimes, runtime, today),
            "blocks_create": runtimes.blocks_create(rb.lambda_runtimes, runtime, today),
            "role": conf.get("Role", ""),
            "kms_key": conf.get("KMSKeyArn", ""),
            "layers": [layer["Arn"] for layer in conf.get("Layers") or []],
            "vpc": bool((conf.get("VpcConfig") or {}).get("SubnetIds")),
        }
    return out


def runtime_findings(found: dict[str, dict[str, Any]]) -> list[str]:
    """One line per deprecated function on a deprecated runtime."""
    return [
        f"{fn}: {entry['lifecycle']}"
        + ("; a restore cannot create it on this runtime" if entry["blocks_create"] else "")
        for fn, entry in sorted(found.items())
        if entry["deprecated_runtime"]
    ]


def legacy_stream_mappings(ddb: Any, lam: Any, tables: list[str]) -> list[dict[str, str]]:
    """The mappings that read the stream of one of `tables` (live ones)."""
    out = []
    for table in tables:
        try:
            stream = ddb.describe_table(TableName=table)["Table"].get("LatestStreamArn")
        except ddb.exceptions.ResourceNotFoundException:
            continue
        if not stream:
            continue
        pages = lam.get_paginator("list_event_source_mappings").paginate(EventSourceArn=stream)
        for page in pages:
            out += [
                {"uuid": m["UUID"], "function": m.get("FunctionArn", ""), "table": table,
                 "stream": stream, "state": m.get("State", "")}
                for m in page["EventSourceMappings"]
            ]  # fmt: skip
    return out


def mapping_findings(mappings: list[dict[str, str]]) -> list[str]:
    return [
        f"{m['function']} reads the stream of {m['table']} (mapping {m['uuid']}): deleting the "
        "table disables it; a restore re-points it at the restored table's new stream"
        for m in mappings
    ]
