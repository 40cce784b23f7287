"""A stand-in's bridge from a DynamoDB export to the Distributed Map reader's input.

AWS writes an export as gzipped JSON lines (`{"Item": <DynamoDB JSON>}` per line) under
`<prefix>/AWSDynamoDB/<export id>/data/`, with manifests, and moto's ItemReader parses neither
JSONL nor gzip. On a real account, and in the embedded world (whose moto runs the function's
handler: engine/rehearsal/moto_lambda.py), the bridge function converts each data file in the
state machine. A stock moto of the operator's own (`--endpoint-url`) runs no Lambda code and
writes one file in a directory of its own naming: there each file is converted here, on the
operator's machine, with the function's very code (engine/aws/export_reader.py), streamed: one
JSON array per data file."""

from __future__ import annotations

from typing import Any

from engine.aws.export_reader import convert_data_file, reader_key_for


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


def bridge_export(s3: Any, export: dict[str, Any], bucket: str, reader_prefix: str) -> int:
    """Each data file of the export as the reader's input under `reader_prefix` in `bucket`
    (`reader_key_for`); returns the items of all of them."""
    return sum(
        convert_data_file(s3, export["S3Bucket"], key, bucket, reader_key_for(key, reader_prefix))
        for key in export_data_keys(s3, export)
    )
