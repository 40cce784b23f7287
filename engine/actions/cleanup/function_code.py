"""A deleted function's code packages, archived before the delete.

$LATEST's package is `<fn>.zip`. A published version whose CodeSha256 differs from $LATEST's
ran other code: its package (GetFunction with Qualifier=<version> gives its Code.Location) is
archived too, one zip per distinct CodeSha256 in the archive folder, named by that SHA-256
(`code-<hex>.zip`), so code shared by versions (or functions) is stored once. The record's
`code.versions` says, for every published version, which file holds its code, or why none
does (restore_functions then publishes that version with $LATEST's code, and says so).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from engine.actions.cleanup.common import is_rehearsal, safe_name
from engine.core.context import ActionContext


def fetch_code(ctx: ActionContext, location: str) -> tuple[bytes | None, str]:
    """The code package behind get_function's presigned URL, or (None, reason)."""
    if not location:
        return None, "get_function returned no code location"
    if is_rehearsal(ctx):
        # moto's location names an S3 object it never stores, and no network is assumed:
        # ask the target's own S3 API, then give up honestly.
        url = urlparse(location)
        bucket = url.netloc.split(".s3")[0]
        try:
            obj = ctx.client("s3").get_object(Bucket=bucket, Key=url.path.lstrip("/"))
            return obj["Body"].read(), ""
        except Exception as exc:
            return None, f"code location not retrievable on this target ({type(exc).__name__})"
    try:
        with urllib.request.urlopen(location, timeout=60) as resp:
            return resp.read(), ""
    except Exception as exc:
        return None, f"code download failed: {type(exc).__name__}: {exc}"


def code_sha(package: bytes) -> str:
    """A package's CodeSha256 as Lambda reports it (base64 of its SHA-256)."""
    return base64.b64encode(hashlib.sha256(package).digest()).decode()


def code_file(sha: str) -> str:
    """The archive file of the package whose CodeSha256 is `sha` (hex on disk: no slashes)."""
    try:
        digest = base64.b64decode(sha, validate=True).hex()
    except (binascii.Error, ValueError):
        digest = safe_name(sha)
    return f"code-{digest}.zip"


def _archive_version(
    ctx: ActionContext, lam: Any, fn: str, version: str, sha: str, folder: Path
) -> tuple[str, str]:
    """(file, "") once the version's package is in `folder`, or ("", why not)."""
    name = code_file(sha)
    if (folder / name).exists():  # the same code, archived already (a resume, another function)
        return name, ""
    got = lam.get_function(FunctionName=fn, Qualifier=version)
    package, reason = fetch_code(ctx, got.get("Code", {}).get("Location", ""))
    if package is None:
        return "", reason
    if code_sha(package) != sha:  # never archive other code under this version's name
        return "", "the package fetched does not match the version's CodeSha256"
    partial = folder / f"{name}.partial"
    partial.write_bytes(package)
    os.replace(partial, folder / name)  # a kill mid-write leaves no truncated zip by that name
    return name, ""


def archive_version_code(
    ctx: ActionContext, lam: Any, fn: str, record: dict[str, Any], folder: Path
) -> dict[str, dict[str, str]]:
    """{version: {"sha", "file", "reason"}} for each of the record's published versions: the
    file holding its code ($LATEST's when the SHA is the same), "" and why when none does."""
    latest_sha = record["configuration"].get("CodeSha256", "")
    latest = record["code"]
    out: dict[str, dict[str, str]] = {}
    fetched: dict[str, tuple[str, str]] = {}  # one GetFunction per distinct code
    for v in record.get("versions", []):
        sha = v.get("CodeSha256", "")
        if not sha or sha == latest_sha:
            file, reason = latest.get("file", ""), latest.get("reason", "")
        elif latest.get("image_uri"):
            file, reason = "", "an image function: a version's own image is not archived"
        else:
            if sha not in fetched:
                fetched[sha] = _archive_version(ctx, lam, fn, v["Version"], sha, folder)
            file, reason = fetched[sha]
        out[v["Version"]] = {"sha": sha, "file": file, "reason": reason}
    return out


def versions_without_code(record: dict[str, Any]) -> list[str]:
    """The published versions that ran other code than $LATEST and whose code is not archived."""
    latest_sha = record["configuration"].get("CodeSha256", "")
    return [
        version
        for version, code in (record["code"].get("versions") or {}).items()
        if code["sha"] and code["sha"] != latest_sha and not code["file"]
    ]
