"""An AWS-shaped DynamoDB export in (moto) S3: gzipped JSON lines `{"Item": ...}` in several
data files under `<prefix>/AWSDynamoDB/<export id>/data/`, with the two manifests beside."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

EXPORT_ID = "01700000000000-abcdef12"
ARN = f"arn:aws:dynamodb:us-east-1:123456789012:table/expenses/export/{EXPORT_ID}"


def item(n: int) -> dict[str, Any]:
    """One item in DynamoDB JSON with every kind an export writes, unicode included."""
    return {
        "userId": {"S": f"user-{n % 7}"},
        "id": {"S": f"exp-{n:06d} naïve ☃ 日本"},
        "amount": {"N": str(n * 3 + 0.25)},
        "paid": {"BOOL": n % 2 == 0},
        "note": {"NULL": True},
        "meta": {"M": {"tag": {"S": "ü"}, "n": {"N": "1"}}},
        "list": {"L": [{"S": "a"}, {"N": "2"}, {"BOOL": False}]},
        "tags": {"SS": ["x", "é"]},
        "blob": {"B": "AAECAwQ="},
    }


def jsonl(items: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps({"Item": i}) + "\n" for i in items).encode("utf-8")


def put_export(
    s3: Any, bucket: str, prefix: str, files: list[list[dict[str, Any]]]
) -> tuple[dict[str, Any], list[str]]:
    """Write `files` (each a list of items) as the export's gzipped data files and manifests;
    returns (the export's description as DescribeExport has it, the data keys in order)."""
    root = f"{prefix}/AWSDynamoDB/{EXPORT_ID}"
    keys = []
    for n, items in enumerate(files):
        key = f"{root}/data/file{n:02d}-{n * 1111:08x}.json.gz"
        s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(jsonl(items)))
        keys.append(key)
    manifest = [{"itemCount": len(f), "dataFileS3Key": k} for f, k in zip(files, keys, strict=True)]
    s3.put_object(
        Bucket=bucket,
        Key=f"{root}/manifest-files.json",
        Body="".join(json.dumps(m) + "\n" for m in manifest).encode(),
    )
    s3.put_object(
        Bucket=bucket,
        Key=f"{root}/manifest-summary.json",
        Body=json.dumps({"exportArn": ARN, "itemCount": sum(map(len, files))}).encode(),
    )
    return {"S3Bucket": bucket, "S3Prefix": prefix, "ExportArn": ARN}, keys


def read_json(s3: Any, bucket: str, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def s3_env(endpoint: str) -> dict[str, str]:
    """A child process's environment: boto3's S3 at `endpoint`, dummy credentials."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "AWS_ENDPOINT_URL_S3": endpoint,  # boto3 reads per-service endpoints from the env
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def run_python(args: list[str], env: dict[str, str], cwd: Path | None = None) -> str:
    """`python <args>` in a child process; its stdout (a failure shows its stderr)."""
    done = subprocess.run(
        [sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
