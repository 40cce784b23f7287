"""Where a run's state lives in S3: `s3://bucket/prefix/name.toml` and the keys beside it.

Pure: no I/O. The journal is `<prefix><name>.toml`; beside it, as beside a local journal, its
lock `<name>.toml.lock`, its log (appended in parts under `<name>.log.d/`) and its artifacts
under `<name>.artifacts/`. Every machine keeps a working copy under its own state folder,
`<state dir>/s3/<bucket>/<prefix><name>.toml`: a local file the engine's neighbours (detached
socket, embedded record, console) are found beside, and which S3 always overrides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

SCHEME = "s3://"
STAMP = "%Y-%m-%dT%H:%M:%SZ"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PART = re.compile(r"^[A-Za-z0-9._+=@-]+$")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" or "a/b/" (ends with a slash)
    name: str  # "<stem>.toml"

    @property
    def stem(self) -> str:
        return self.name[: -len(".toml")]

    @property
    def key(self) -> str:
        return self.prefix + self.name

    @property
    def lock_key(self) -> str:
        return self.key + ".lock"

    @property
    def log_prefix(self) -> str:
        return f"{self.prefix}{self.stem}.log.d/"

    @property
    def artifacts_prefix(self) -> str:
        return f"{self.prefix}{self.stem}.artifacts/"

    @property
    def url(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"

    def cache_path(self, state_dir: Path) -> Path:
        """This machine's working copy of the journal (never the truth: S3 is)."""
        return state_dir / "s3" / self.bucket / PurePosixPath(self.key)

    def log_part(self, index: int) -> str:
        return f"{self.log_prefix}{index:08d}"


def is_s3_url(text: str) -> bool:
    return text.lower().startswith("s3:")


def parse_s3_url(text: str) -> S3Location:
    """`s3://bucket/prefix/name.toml`; a ValueError in one line for anything else."""
    if not text.startswith(SCHEME):
        raise ValueError(f"{text!r}: an S3 journal is written s3://bucket/prefix/name.toml")
    bucket, _, key = text[len(SCHEME) :].partition("/")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ValueError(f"{text!r}: {bucket!r} is not an S3 bucket name")
    parts = key.split("/")
    if not key or not all(parts) or any(p in (".", "..") or not _PART.match(p) for p in parts):
        raise ValueError(
            f"{text!r}: the key must be plain path parts (letters, digits, . _ - + = @) "
            "ending in name.toml"
        )
    name = parts[-1]
    if not name.endswith(".toml") or name == ".toml":
        raise ValueError(f"{text!r}: the journal's name must end in .toml")
    prefix = "/".join(parts[:-1])
    return S3Location(bucket, prefix + "/" if prefix else "", name)


def holder_age(since: str, now: datetime) -> str:
    """How long a lock has been held ("?" when `since` is not a "%Y-%m-%dT%H:%M:%SZ" stamp)."""
    try:
        start = datetime.strptime(since, STAMP).replace(tzinfo=UTC)
    except ValueError:
        return "?"
    seconds = max(0, int((now - start).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {seconds}s"
