"""The embedded world's state bucket: a rehearsal keeps `--journal s3://...` in the world
itself, in a bucket made as a real one must be (versioning on, private)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError


def make_state_bucket(s3: Any, bucket: str) -> None:
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
