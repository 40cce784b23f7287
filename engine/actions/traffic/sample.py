"""The consistency sampler: a random sample of each legacy entity table compared with its
company-scoped twins, as the migration maps them; the `inconsistency` trigger reads it."""

from __future__ import annotations

import random
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from engine.actions.analyze.legacy import KeyIndex, open_index
from engine.actions.analyze.mapping import Resolver, build_resolver
from engine.aws import dynamo
from engine.core.context import ActionContext
from engine.runbook.model import EntitySpec
from engine.runbook.transforms import CREATED_BY, UPDATED_AT, classify_legacy, is_newer
from engine.state.records import Record

SAMPLE_SEGMENTS = 8  # the scanned half starts at a random segment of the legacy table
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


def _key_schema(ddb: Any, table: str, cache: dict[str, dict[str, str]]) -> dict[str, str]:
    """A table's key attributes and their types (S, N or B), in key-schema order."""
    if table not in cache:
        described = ddb.describe_table(TableName=table)["Table"]
        types = {a["AttributeName"]: a["AttributeType"] for a in described["AttributeDefinitions"]}
        cache[table] = {
            k["AttributeName"]: types[k["AttributeName"]] for k in described["KeySchema"]
        }
    return cache[table]


def _scanned(ddb: Any, table: str, size: int, rng: random.Random) -> list[dict[str, Any]]:
    """Up to `size` items, starting at a random segment and moving on while short: reaches
    what the application wrote lately (the key index knows only what the analysis saw)."""
    start = rng.randrange(SAMPLE_SEGMENTS)
    items: list[dict[str, Any]] = []
    for offset in range(SAMPLE_SEGMENTS):
        page = ddb.scan(
            TableName=table,
            Limit=size - len(items),
            Segment=(start + offset) % SAMPLE_SEGMENTS,
            TotalSegments=SAMPLE_SEGMENTS,
        )
        items += [dynamo.to_python(raw) for raw in page.get("Items", [])]
        if len(items) >= size:
            break
    return items


def uniform_keys(rows: Iterable[tuple[str, str]], size: int, rng: random.Random) -> list:
    """Pure: `size` rows drawn uniformly from a stream of unknown length, in one pass with
    `size` of them in memory (reservoir sampling)."""
    chosen: list[tuple[str, str]] = []
    for seen, row in enumerate(rows):
        if seen < size:
            chosen.append(row)
        elif (slot := rng.randrange(seen + 1)) < size:
            chosen[slot] = row
    return chosen


def _from_index(
    ddb: Any,
    entity: EntitySpec,
    index: KeyIndex | None,
    source_keys: dict[str, str],
    size: int,
    rng: random.Random,
) -> list[dict[str, Any]]:
    """Up to `size` legacy items drawn uniformly from every item the analysis indexed, read by
    key: random across the whole table, however its partition keys fall into scan segments.
    Nothing when there is no index, or the legacy key is not (user, id) as strings/numbers."""
    if index is None or set(source_keys) != {entity.user_attr, entity.id_attr}:
        return []
    if any(kind not in ("S", "N") for kind in source_keys.values()):
        return []
    rows = index.db.execute("SELECT user, id FROM items WHERE entity=?", (entity.name,))
    keys = []
    for user, ident in uniform_keys(rows, size, rng):
        raw = {entity.user_attr: user, entity.id_attr: ident}
        keys.append(
            {
                name: Decimal(raw[name]) if kind == "N" else raw[name]
                for name, kind in source_keys.items()
            }
        )
    return dynamo.batch_get(ddb, entity.source, keys, consistent=True) if keys else []


def _sample(
    ddb: Any,
    entity: EntitySpec,
    index: KeyIndex | None,
    schemas: dict[str, dict[str, str]],
    size: int,
    rng: random.Random,
) -> list[dict[str, Any]]:
    """Half drawn uniformly from the key index, the rest from a random scan segment; each
    item once."""
    source_keys = _key_schema(ddb, entity.source, schemas)
    drawn = _from_index(ddb, entity, index, source_keys, size // 2, rng)
    out: dict[tuple[str, ...], dict[str, Any]] = {}
    for item in [*drawn, *_scanned(ddb, entity.source, size, rng)]:
        key = tuple(str(item.get(name)) for name in source_keys)
        if key not in out and len(out) < size:
            out[key] = item
    return list(out.values())


def sample_consistency(ctx: ActionContext, rng: random.Random | None = None) -> dict[str, int]:
    """Compare a sample of each legacy entity table with the company-scoped twins.

    Half of each sample is drawn uniformly from every item the analysis indexed (random
    across the whole table), the rest from a random parallel-scan segment (what the
    application wrote lately).
    Users map to companies exactly as the migration maps them (overrides, memberships, orphans).
    Returns counts: sampled, compared (twin found), missing (no twin yet), excluded (already
    reported by the migration: malformed, collision, newer twin), unmapped (no single
    company), mismatched (twin differs in a non-metadata attribute).
    """
    rb = ctx.runbook
    ddb = ctx.client("dynamodb")
    rng = rng or random.Random()
    resolver = build_resolver(ctx) if rb.mapping is not None else None
    schemas: dict[str, dict[str, str]] = {}
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
                items = _sample(ddb, entity, index, schemas, rb.monitoring.sample_size, rng)
                target_keys = list(_key_schema(ddb, entity.target, schemas))
            except ddb.exceptions.ResourceNotFoundException:
                continue
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
