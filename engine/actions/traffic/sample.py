"""The consistency sampler: a random sample of each legacy entity table compared with its
company-scoped twins, as the migration maps them; the `inconsistency` trigger reads it."""

from __future__ import annotations

import random
from typing import Any

from engine.actions.analyze.legacy import KeyIndex, open_index
from engine.actions.analyze.mapping import Resolver, build_resolver
from engine.aws import dynamo
from engine.core.context import ActionContext
from engine.runbook.model import EntitySpec
from engine.runbook.transforms import CREATED_BY, UPDATED_AT, classify_legacy, is_newer
from engine.state.records import Record

SAMPLE_SEGMENTS = 8  # a sample starts at a random segment of the legacy table
METADATA_ATTRS = frozenset(
    {
        "createdAt",
        "updatedAt",
        "createdBy",
        "updatedBy",
        "migratedAt",
        "migratedFrom",
        "migrationTs",
        "migrationId",
        "legacyUserId",
        "version",
        "ttl",
    }
)


def _key_names(ddb: Any, table: str, cache: dict[str, list[str]]) -> list[str]:
    if table not in cache:
        schema = ddb.describe_table(TableName=table)["Table"]["KeySchema"]
        cache[table] = [k["AttributeName"] for k in schema]
    return cache[table]


def _sample(ddb: Any, table: str, size: int, rng: random.Random) -> list[dict[str, Any]]:
    """Up to `size` items, starting at a random segment and moving on while short."""
    start = rng.randrange(SAMPLE_SEGMENTS)
    items: list[dict[str, Any]] = []
    for offset in range(SAMPLE_SEGMENTS):
        page = ddb.scan(
            TableName=table,
            Limit=size - len(items),
            Segment=(start + offset) % SAMPLE_SEGMENTS,
            TotalSegments=SAMPLE_SEGMENTS,
        )
        items += page.get("Items", [])
        if len(items) >= size:
            break
    return items


def sample_consistency(ctx: ActionContext, rng: random.Random | None = None) -> dict[str, int]:
    """Compare a sample of each legacy entity table with the company-scoped twins.

    Each call starts at a random parallel-scan segment (up to `sample_size` items), so
    successive samples move over the whole table and reach items the application wrote lately.
    Users map to companies exactly as the migration maps them (overrides, memberships, orphans).
    Returns counts: sampled, compared (twin found), missing (no twin yet), excluded (already
    reported by the migration: malformed, collision, newer twin), unmapped (no single
    company), mismatched (twin differs in a non-metadata attribute).
    """
    rb = ctx.runbook
    ddb = ctx.client("dynamodb")
    rng = rng or random.Random()
    resolver = build_resolver(ctx) if rb.mapping is not None else None
    keys: dict[str, list[str]] = {}
    counts = {
        "sampled": 0,
        "compared": 0,
        "missing": 0,
        "unmapped": 0,
        "mismatched": 0,
        "excluded": 0,  # reported by the migration already: malformed, collisions, newer twins
    }
    index = open_index(ctx)
    try:
        for entity in rb.entities:
            try:
                sample = _sample(ddb, entity.source, rb.monitoring.sample_size, rng)
                target_keys = _key_names(ddb, entity.target, keys)
            except ddb.exceptions.ResourceNotFoundException:
                continue
            items = [dynamo.to_python(raw) for raw in sample]
            twins = _twins(ctx, entity, items, resolver, target_keys)  # BatchGetItem, 100 keys
            for item in items:
                counts["sampled"] += 1
                outcome = _compare_twin(ctx, entity, item, resolver, index, target_keys, twins)
                counts[outcome] += 1
                if outcome == "mismatched":
                    counts["compared"] += 1
    finally:
        if index is not None:
            index.close()
    return counts


def _twins(
    ctx: ActionContext,
    entity: EntitySpec,
    items: list[dict[str, Any]],
    resolver: Resolver | None,
    target_keys: list[str],
) -> dict[tuple[str, str], dict[str, Any]]:
    """The company-scoped twins of the sampled items, read strongly consistent in batches."""
    keys: list[dict[str, Any]] = []
    if resolver is None or {entity.company_attr, entity.id_attr} != set(target_keys):
        return {}
    for item in items:
        if classify_legacy(entity, item) is not None:
            continue
        company = resolver.company_for(item[entity.user_attr])
        if company is not None:
            keys.append({entity.company_attr: company, entity.id_attr: item[entity.id_attr]})
    got = dynamo.batch_get(ctx.client("dynamodb"), entity.target, keys, consistent=True)
    return {(str(t[entity.company_attr]), str(t[entity.id_attr])): t for t in got}


def _compare_twin(
    ctx: ActionContext,
    entity: EntitySpec,
    item: dict[str, Any],
    resolver: Resolver | None,
    index: KeyIndex | None,
    target_keys: list[str],
    twins: dict[tuple[str, str], dict[str, Any]],
) -> str:
    """One legacy item against its company-scoped twin; returns the counter it falls under.
    Values are compared deserialised, so string sets compare as sets, not in wire order."""
    if classify_legacy(entity, item) is not None:
        return "excluded"  # quarantined by the migration
    user, ident = item[entity.user_attr], item[entity.id_attr]
    company = resolver.company_for(user) if resolver else None
    if company is None or {entity.company_attr, entity.id_attr} != set(target_keys):
        return "unmapped"
    if index is not None and index.is_collision(entity.name, company, ident):
        return "excluded"  # a collision: written by neither side, reported
    twin = twins.get((company, ident))
    if twin is None:
        return "missing"
    if twin.get(CREATED_BY) not in (None, user) or is_newer(twin.get(UPDATED_AT), ctx.migration_ts):
        return "excluded"  # another user's item, or the application's newer write: reported
    skip = METADATA_ATTRS | {entity.user_attr, entity.company_attr}
    if any(twin.get(a) != v for a, v in item.items() if a not in skip):
        return "mismatched"
    return "compared"


class SampleCounts(Record):
    """The last consistency sample: legacy items read, and what their twins showed."""

    sampled: int = 0
    compared: int = 0
    missing: int = 0
    unmapped: int = 0
    mismatched: int = 0
    excluded: int = 0
