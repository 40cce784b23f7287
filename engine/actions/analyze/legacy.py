"""analyze_legacy (plan phase 2, analyze-data-volume): stream the legacy entity tables and find
what would go wrong before anything is written.

Per entity: item counts, orphan users (no membership: a new company will be made), malformed
items (transforms.classify_legacy), items the target table cannot hold once company-scoped
(target_fit.why_unfit against DescribeTable: key types, empty keys, 400 KB), and collisions:
  * legacy-duplicate-key: two legacy items of different users land on the same target key
    (same company via the mapping, same id);
  * target-owned-by-other: the target already has an item with that key created by another user.
Items on a collision key are written by neither side (migrate_entity skips them) until resolved.

Keys never accumulate in Python memory: the key index is a sqlite3 file beside the journal
(`analysis-index.sqlite`), which migrate_entity and validate_migration read back.

Artifacts: `collisions.jsonl` {"entity","company","id","users","reason","existing_created_by"},
`quarantine.jsonl` {"entity","key","reason"}.
Summary: {items, orphans, orphan_items, collisions, collision_keys, malformed, unfit_for_target,
unmapped,
newer_in_target, entities: {name: {items, malformed, collisions, orphan_items}}, artifacts}.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from engine.actions.analyze.mapping import (
    MappingConflict,
    Resolver,
    build_resolver,
    conflict_message,
)
from engine.aws import dynamo
from engine.aws.target_fit import TargetShape, shape_from_description, why_unfit
from engine.core.context import Action, ActionContext, PlannedCall
from engine.runbook.model import EntitySpec, Runbook
from engine.runbook.transforms import (
    CREATED_BY,
    UPDATED_AT,
    classify_legacy,
    is_newer,
    json_safe,
    orphan_company_id,
    to_company_scoped,
)
from engine.state.artifact_copy import side_files
from engine.state.records import Cursors, Summary
from engine.state.resume import cursors_of

INDEX_ARTIFACT = "analysis-index.sqlite"
COLLISIONS_ARTIFACT = "collisions.jsonl"
QUARANTINE_ARTIFACT = "quarantine.jsonl"


class EntitiesParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entities: list[str]


# --- helpers shared by the data actions --------------------------------------------------------


def entity_spec(rb: Runbook, name: str) -> EntitySpec:
    found = rb.find_entity(name)
    if found is None:
        known = ", ".join(e.name for e in rb.entities)
        raise ValueError(f"unknown entity {name!r} (runbook entities: {known})")
    return found


def target_keys(rb: Runbook, e: EntitySpec) -> tuple[str, str]:
    """(partition, sort) key names of the entity's company-scoped table."""
    spec = rb.find_table(e.target)
    if spec is not None and spec.sort_key:
        return spec.partition_key, spec.sort_key
    return e.company_attr, e.id_attr


def source_keys(rb: Runbook, e: EntitySpec) -> list[str]:
    spec = rb.find_table(e.source)
    if spec is None:
        return [e.user_attr, e.id_attr]
    return [spec.partition_key] + ([spec.sort_key] if spec.sort_key else [])


def key_text(item: dict[str, Any], names: list[str]) -> str:
    """A stable string for an item's key (for artifacts and sqlite)."""
    return json.dumps({n: json_safe(item.get(n)) for n in names}, sort_keys=True)


def company_or_fail(resolver: Resolver, user: str, ctx: ActionContext) -> str:
    company = resolver.company_for(user)
    if company is None:
        raise MappingConflict(conflict_message(resolver.conflicts, ctx.overrides_path()))
    return company


class KeyIndex:
    """The sqlite key index: legacy target keys per entity, collisions, orphans."""

    def __init__(self, path: Path, fresh: bool = False) -> None:
        if fresh:
            for p in (path, *side_files(path)):
                p.unlink(missing_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, check_same_thread=False)  # migrate threads lock it
        self.db.executescript(  # WAL: as the migrate ledger's (engine/actions/migrate/ledger.py)
            """
            PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;
            CREATE TABLE IF NOT EXISTS items (entity TEXT, company TEXT, id TEXT, user TEXT,
                PRIMARY KEY (entity, company, id, user)) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS target_conflicts (entity TEXT, company TEXT, id TEXT,
                user TEXT, existing TEXT, PRIMARY KEY (entity, company, id, user)) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS collision_keys (entity TEXT, company TEXT, id TEXT,
                PRIMARY KEY (entity, company, id)) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS orphans (user TEXT PRIMARY KEY) WITHOUT ROWID;
            """
        )

    def add(self, entity: str, company: str, ident: str, user: str) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO items VALUES (?,?,?,?)", (entity, company, ident, user)
        )

    def add_target_conflict(
        self, entity: str, company: str, ident: str, user: str, existing: str
    ) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO target_conflicts VALUES (?,?,?,?,?)",
            (entity, company, ident, user, existing),
        )

    def add_orphan(self, user: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO orphans VALUES (?)", (user,))

    def finish(self) -> None:
        self.db.execute("DELETE FROM collision_keys")
        self.db.execute(
            "INSERT OR IGNORE INTO collision_keys SELECT entity, company, id FROM items "
            "GROUP BY entity, company, id HAVING COUNT(*) > 1"
        )
        self.db.execute(
            "INSERT OR IGNORE INTO collision_keys SELECT entity, company, id FROM target_conflicts"
        )
        self.db.commit()

    def is_collision(self, entity: str, company: str, ident: str) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM collision_keys WHERE entity=? AND company=? AND id=?",
            (entity, company, ident),
        ).fetchone()
        return row is not None

    def collision_reason(self, entity: str, company: str, ident: str) -> tuple[str, str]:
        """Why a key collides: (reason, the existing target item's creator or "")."""
        row = self.db.execute(
            "SELECT existing FROM target_conflicts WHERE entity=? AND company=? AND id=? LIMIT 1",
            (entity, company, ident),
        ).fetchone()
        if row is not None:
            return "analysis: target-owned-by-other", str(row[0])
        return "analysis: legacy-duplicate-key", ""

    def collision_keys(self, entity: str) -> list[tuple[str, str]]:
        """(company, id) of every key the analysis found colliding, for one entity."""
        rows = self.db.execute(
            "SELECT company, id FROM collision_keys WHERE entity=? ORDER BY 1, 2", (entity,)
        )
        return [(str(company), str(ident)) for company, ident in rows]

    def collision_items(self, entity: str | None = None) -> int:
        """Legacy items that sit on a collision key (not migrated)."""
        sql = (
            "SELECT COUNT(*) FROM items i JOIN collision_keys c "
            "ON i.entity=c.entity AND i.company=c.company AND i.id=c.id"
        )
        args: tuple[str, ...] = ()
        if entity is not None:
            sql += " WHERE i.entity=?"
            args = (entity,)
        return int(self.db.execute(sql, args).fetchone()[0])

    def collision_rows(self) -> Any:
        return self.db.execute(
            "SELECT c.entity, c.company, c.id, "
            "(SELECT group_concat(user, '\n') FROM items i WHERE i.entity=c.entity "
            " AND i.company=c.company AND i.id=c.id), "
            "(SELECT existing FROM target_conflicts t WHERE t.entity=c.entity "
            " AND t.company=c.company AND t.id=c.id LIMIT 1) "
            "FROM collision_keys c ORDER BY 1, 2, 3"
        )

    def count(self, table: str) -> int:
        return int(self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def close(self) -> None:
        self.db.commit()
        self.db.close()


class AnalyzeCursors(Cursors):
    index: str | None = None  # the key index's file name among the artifacts


class AnalyzeSummary(Summary):
    items: int = 0
    orphans: int = 0
    orphan_items: int = 0
    collisions: int = 0
    collision_keys: int = 0
    malformed: int = 0
    unfit_for_target: int = 0
    unmapped: int = 0
    newer_in_target: int = 0
    entities: dict[str, dict[str, int]] = {}
    artifacts: list[str] = [COLLISIONS_ARTIFACT]


def open_index(ctx: ActionContext) -> KeyIndex | None:
    """The key index of the latest finished analyze_legacy step, if any."""
    for step in reversed(ctx.runbook.steps):
        state = ctx.journal.steps.get(step.id)
        if step.action == "analyze_legacy" and state and state.status == "done":
            made = cursors_of(ctx.journal, step.id, AnalyzeCursors)
            path = ctx.artifacts_dir / ((made.index if made else None) or INDEX_ARTIFACT)
            if path.exists():
                return KeyIndex(path)
    path = ctx.artifacts_dir / INDEX_ARTIFACT
    return KeyIndex(path) if path.exists() else None


def target_shape(ddb: Any, table: str) -> TargetShape | None:
    try:
        return shape_from_description(ddb.describe_table(TableName=table)["Table"])
    except ClientError as exc:
        if dynamo.error_code(exc) == "ResourceNotFoundException":
            return None
        raise


# --- the action --------------------------------------------------------------------------------


def _analyze_entity(
    ctx: ActionContext,
    e: EntitySpec,
    resolver: Resolver,
    index: KeyIndex,
    quarantine: Any,
) -> dict[str, int]:
    ddb = ctx.client("dynamodb")
    prefix = ctx.runbook.mapping.orphan_company_prefix if ctx.runbook.mapping else ""
    pk, sk = target_keys(ctx.runbook, e)
    skeys = source_keys(ctx.runbook, e)
    counts = {
        "items": 0,
        "malformed": 0,
        "unfit_for_target": 0,
        "unmapped": 0,
        "orphan_items": 0,
        "newer_in_target": 0,
    }
    if not dynamo.table_exists(ddb, e.source):
        ctx.log(f"{e.source} does not exist: nothing to analyze for {e.name}", "warning")
        return counts
    shape = target_shape(ddb, e.target)
    if shape is None:
        ctx.log(f"{e.target} does not exist: items not checked against it", "warning")
    total = dynamo.count_items(ddb, e.source, clock=ctx.clock)
    ctx.progress(e.source, 0, total)
    for page, _ in dynamo.scan_pages(ddb, e.source, clock=ctx.clock):
        ctx.clock.check()
        wanted: dict[tuple[str, str], str] = {}
        for item in page:
            counts["items"] += 1
            reason = classify_legacy(e, item)
            if reason is not None:
                counts["malformed"] += 1
                row = {"entity": e.name, "key": json.loads(key_text(item, skeys)), "reason": reason}
                quarantine.write(json.dumps(row, sort_keys=True) + "\n")
                continue
            user = item[e.user_attr]
            company = resolver.company_for(user)
            if company is None:
                counts["unmapped"] += 1
                row = {
                    "entity": e.name,
                    "key": json.loads(key_text(item, skeys)),
                    "reason": f"user in several companies: {', '.join(resolver.conflicts[user])}",
                }
                quarantine.write(json.dumps(row, sort_keys=True) + "\n")
                continue
            unfit = None
            if shape is not None:
                unfit = why_unfit(shape, to_company_scoped(e, item, company, ctx.migration_ts))
            if unfit is not None:  # migrate_entity sets it aside (quarantine) the same way
                counts["unfit_for_target"] += 1
                row = {"entity": e.name, "key": json.loads(key_text(item, skeys)), "reason": unfit}
                quarantine.write(json.dumps(row, sort_keys=True) + "\n")
                continue
            if company == orphan_company_id(prefix, user):
                counts["orphan_items"] += 1
                index.add_orphan(user)
            ident = item[e.id_attr]
            index.add(e.name, company, ident, user)
            wanted[(company, ident)] = user
        if wanted:
            existing = dynamo.batch_get(
                ddb,
                e.target,
                [{pk: c, sk: i} for c, i in wanted],
                clock=ctx.clock,
                projection="#p, #s, #c, #u",
                names={"#p": pk, "#s": sk, "#c": CREATED_BY, "#u": UPDATED_AT},
            )
            for old in existing:
                key = (str(old[pk]), str(old[sk]))
                user = wanted.get(key)
                if user is None:
                    continue
                if old.get(CREATED_BY) != user:
                    index.add_target_conflict(e.name, *key, user, str(old.get(CREATED_BY, "")))
                elif is_newer(old.get(UPDATED_AT), ctx.migration_ts):
                    counts["newer_in_target"] += 1
        ctx.progress(e.source, counts["items"], total)
    short = dynamo.check_scan_arithmetic(
        e.name, total, counts["items"], lambda: dynamo.count_items(ddb, e.source, clock=ctx.clock)
    )
    if short:
        raise dynamo.ShortScan(f"{short}. `runbook run` analyzes again")
    return counts


def run(ctx: ActionContext, p: EntitiesParams) -> AnalyzeSummary:
    entities = [entity_spec(ctx.runbook, n) for n in p.entities]
    resolver = build_resolver(ctx)
    index = KeyIndex(ctx.artifact(INDEX_ARTIFACT), fresh=True)
    ctx.cursors_as(AnalyzeCursors).index = INDEX_ARTIFACT
    per: dict[str, dict[str, int]] = {}
    try:
        with ctx.artifact(QUARANTINE_ARTIFACT).open("w") as quarantine:
            for e in entities:
                per[e.name] = _analyze_entity(ctx, e, resolver, index, quarantine)
                index.db.commit()
                ctx.checkpoint()
        index.finish()
        with ctx.artifact(COLLISIONS_ARTIFACT).open("w") as fh:
            for entity, company, ident, users, existing in index.collision_rows():
                reason = "target-owned-by-other" if existing else "legacy-duplicate-key"
                row = {
                    "entity": entity,
                    "company": company,
                    "id": ident,
                    "users": sorted((users or "").split("\n")),
                    "reason": reason,
                    "existing_created_by": existing or "",
                }
                fh.write(json.dumps(row, sort_keys=True) + "\n")
        for e in entities:
            per[e.name]["collisions"] = index.collision_items(e.name)
        orphans = index.count("orphans")
        collision_keys = index.count("collision_keys")
    finally:
        index.close()
    ctx.checkpoint(force=True)

    def total(key: str) -> int:
        return sum(v[key] for v in per.values())

    summary = AnalyzeSummary(
        items=total("items"),
        orphans=orphans,
        orphan_items=total("orphan_items"),
        collisions=total("collisions"),
        collision_keys=collision_keys,
        malformed=total("malformed"),
        unfit_for_target=total("unfit_for_target"),
        unmapped=total("unmapped"),
        newer_in_target=total("newer_in_target"),
        entities=per,
        artifacts=[COLLISIONS_ARTIFACT, QUARANTINE_ARTIFACT, INDEX_ARTIFACT],
    )
    if summary.collisions:
        ctx.log(
            f"{summary.collisions} legacy items on {collision_keys} colliding keys: "
            f"see {COLLISIONS_ARTIFACT}",
            "warning",
        )
    if summary.malformed:
        ctx.log(f"{summary.malformed} malformed items: see {QUARANTINE_ARTIFACT}", "warning")
    if summary.unfit_for_target:
        ctx.log(
            f"{summary.unfit_for_target} items the target tables cannot hold (key types, "
            f"empty keys, 400 KB) will be set aside: see {QUARANTINE_ARTIFACT}",
            "warning",
        )
    return summary


def plan(rb: Runbook, p: EntitiesParams) -> list[PlannedCall]:
    calls: list[PlannedCall] = []
    for name in p.entities:
        e = rb.find_entity(name)
        if e is None:
            continue
        calls.append(PlannedCall("dynamodb", "Scan", e.source, "read only, streamed"))
        calls.append(PlannedCall("dynamodb", "BatchGetItem", e.target, "existing target keys"))
    return calls


ACTIONS = (
    Action(
        "analyze_legacy",
        EntitiesParams,
        run,
        plan,
        "Stream legacy tables: counts, orphans, malformed items, target-key collisions",
        cursors=AnalyzeCursors,
        summary=AnalyzeSummary,
    ),
)
