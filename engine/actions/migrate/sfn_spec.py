"""What the step-functions backend's state machine is generated from (CopySpec), the names AWS
accepts, and what the generator refuses (pure: no I/O)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from engine.aws.target_fit import TargetShape
from engine.runbook.model import EntitySpec
from engine.runbook.transforms import CREATED_AT, CREATED_BY, UPDATED_AT

NAME_LIMIT = 80  # Step Functions names (state machine, execution): 1..80 characters
ROLE_NAME_LIMIT = 64  # IAM role names
MAX_KNOWN_COLLISIONS = 2000  # collisions carried in the definition (1 MB at most, each child)
SIMPLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # addressable as $.Item.<name>
SAFE_PREFIX = re.compile(r"^[A-Za-z0-9_.=/-]*$")  # fits a States.Format template unescaped


@dataclass(frozen=True)
class CopySpec:
    """What the generator needs: the entity, the keys of both tables, the target's shape, the
    run's timestamp, where things are in S3, batching and concurrency."""

    entity: EntitySpec
    source_keys: tuple[str, ...]  # the legacy table's key attributes
    target_keys: tuple[str, str]  # (partition, sort) of the company-scoped table
    shape: TargetShape
    migration_ts: str
    bucket: str
    reader_prefix: str  # the reader's input: one JSON array of {"Item": ...} per data file
    files_prefix: str  # what the outer map lists: the export's data files, or the converted ones
    mapping_prefix: str  # <prefix><sha256(user)> holds the user's companyId
    outcomes_prefix: str  # <prefix><sha256(key)>: an item that was not simply migrated
    results_prefix: str  # ResultWriter's
    known_collisions: tuple[str, ...] = ()  # "company#id" the analysis found
    batch_size: int = 1
    max_concurrency: int = 1000
    child_type: Literal["STANDARD", "EXPRESS"] = "EXPRESS"
    files_in_flight: int = 10  # data files copied at once (open map runs: 1,000 an account)
    bridge_function: str | None = None  # the Lambda that converts a data file; None: converted


def aws_name(parts: list[str], limit: int = NAME_LIMIT) -> str:
    """A deterministic name of `parts` that Step Functions and IAM accept: letters, digits,
    - and _ (CloudWatch logging takes no more), at most `limit` characters; a longer one is
    cut and ends with a hash of the whole, so two long names stay apart."""
    raw = "-".join(parts)
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", raw).strip("-") or "runbook"
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:10]
    return f"{name[: limit - 11].rstrip('-')}-{digest}"


def user_object(prefix: str, user: str) -> str:
    """The S3 key of a user's company (what the Lookup state reads)."""
    return prefix + hashlib.sha256(user.encode("utf-8")).hexdigest()


def refusal(spec: CopySpec) -> str | None:
    """Why this entity's transform cannot run as the state machine, or None (one line, for
    `runbook check`, `runbook plan` and the step)."""
    e = spec.entity
    names = {e.user_attr, e.id_attr, e.company_attr, *e.required, *spec.source_keys}
    names |= {k.name for k in spec.shape.keys}
    odd = sorted(n for n in names if not SIMPLE_NAME.match(n))
    if odd:
        return (
            f"attribute name(s) {', '.join(odd)} cannot be addressed in JSONPath "
            "($.Item.<name>): use the local backend"
        )
    if spec.target_keys != (e.company_attr, e.id_attr):
        return (
            f"{e.target}'s keys are {spec.target_keys}, not ({e.company_attr}, {e.id_attr}): "
            "the state machine builds only that key"
        )
    if e.user_attr in (CREATED_BY, CREATED_AT, UPDATED_AT, e.company_attr, e.id_attr):
        return f"user attribute {e.user_attr} is one the transform sets: use the local backend"
    for prefix in (spec.mapping_prefix, spec.outcomes_prefix):
        if not SAFE_PREFIX.match(prefix):
            return f"S3 prefix {prefix!r}: only letters, digits and _ . = / - are allowed"
    if len(spec.known_collisions) > MAX_KNOWN_COLLISIONS:
        return (
            f"{len(spec.known_collisions)} known collisions: more than the definition carries "
            f"({MAX_KNOWN_COLLISIONS}); resolve them or use the local backend"
        )
    return None
