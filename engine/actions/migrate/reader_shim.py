"""TEMPORARY, branch export-reader only: the state machine definition still reads ONE JSON
array at `reader_key`, while the World seam now converts each data file to its own array
under a prefix. This joins them (rehearsal-sized, in memory) until the definition iterates the
data files itself; the main developer's change to sfn_backend.py replaces the one call."""

from __future__ import annotations

import json
from typing import Any

from engine.core.world import World


def bridge_to_one_array(
    world: World, s3: Any, export: dict[str, Any], bucket: str, reader_key: str
) -> int:
    """The per-file arrays under `<reader dir>/files/`, joined at `reader_key`; the items."""
    prefix = reader_key.rsplit("/", 1)[0] + "/files/"
    items = world.bridge_export(s3, export, bucket, prefix)
    if items is None:  # as before this branch: a real account is refused
        raise RuntimeError(
            "the step-functions backend is rehearsed only until its state machine iterates "
            "the export's data files (docs/step-functions.md); use the local backend"
        )
    joined: list[Any] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in sorted(page.get("Contents", []), key=lambda o: o["Key"]):
            joined += json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
    body = json.dumps(joined, separators=(",", ":")).encode("utf-8")
    s3.put_object(Bucket=bucket, Key=reader_key, Body=body, ContentType="application/json")
    return items
