"""The rehearsal's bridge from a DynamoDB export to the Distributed Map reader's input.

AWS writes an export as gzipped JSON lines (`{"Item": <DynamoDB JSON>}` per line) under
`<prefix>/AWSDynamoDB/<export id>/data/`, with manifests; moto 5.2.6 writes one such file and no
manifest, and its ItemReader parses neither JSONL nor gzip (InputType JSON, CSV only). A
rehearsal therefore rewrites the export's lines as one JSON array object, here, on the
operator's machine: what a real account does instead is in docs/step-functions.md. Memory holds
the export once (rehearsal tables are small)."""

from __future__ import annotations

import gzip
import json
from typing import Any


def export_data_keys(s3: Any, export: dict[str, Any]) -> list[str]:
    """The data files of this export: its own directory (named by the export's id on AWS),
    else the newest export directory under its prefix (moto names it at random)."""
    bucket, prefix = export["S3Bucket"], export.get("S3Prefix", "").rstrip("/")
    root = (prefix + "/" if prefix else "") + "AWSDynamoDB/"
    dirs: dict[str, list[dict[str, Any]]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=root):
        for obj in page.get("Contents", []):
            rest = obj["Key"][len(root) :]
            if "/data/" in rest:
                dirs.setdefault(rest.split("/", 1)[0], []).append(obj)
    if not dirs:
        return []
    export_id = str(export.get("ExportArn", "")).rsplit("/", 1)[-1]
    chosen = (
        export_id
        if export_id in dirs
        else max(dirs, key=lambda d: max(o["LastModified"] for o in dirs[d]))
    )
    return sorted(o["Key"] for o in dirs[chosen])


def bridge_export(s3: Any, export: dict[str, Any], bucket: str, reader_key: str) -> int:
    """Write the export's items as the reader's input (a JSON array); returns how many."""
    lines: list[str] = []
    for key in export_data_keys(s3, export):
        body = s3.get_object(Bucket=export["S3Bucket"], Key=key)["Body"].read()
        text = gzip.decompress(body).decode("utf-8") if key.endswith(".gz") else body.decode()
        for line in text.splitlines():
            if line.strip():
                item = json.loads(line)["Item"]
                lines.append(json.dumps({"Item": item}, separators=(",", ":")))
    s3.put_object(
        Bucket=bucket,
        Key=reader_key,
        Body=("[" + ",".join(lines) + "]").encode("utf-8"),
        ContentType="application/json",
    )
    return len(lines)
