"""The inverses of migrate_entity: remove_migrated_items (rollback-data) deletes the target items
this run wrote (conditional DeleteItems in flight, counted per answered chunk), and
resync_legacy (rollback-cleanup) writes company-scoped items back to the legacy tables."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import Field

from engine.actions.analyze.legacy import (
    EntitiesParams,
    entity_spec,
    source_keys,
    target_keys,
)
from engine.actions.migrate.state import (
    EntityScans,
    RemoveMigratedSummary,
    ResyncCursors,
    ResyncSummary,
)
from engine.aws import dynamo
from engine.core.clock import Interrupted
from engine.core.context import Action, ActionContext, PlannedCall
from engine.runbook.model import EntitySpec, Runbook
from engine.runbook.transforms import (
    CREATED_BY,
    UPDATED_AT,
    classify_legacy,
    dedupe_by_key,
    to_legacy,
)

# --- rollback: remove_migrated_items -----------------------------------------------------------


def _entity_scan(
    ctx: ActionContext,
    e: EntitySpec,
    table: str,
    filter_expr: str,
    names: dict[str, str],
    values: dict[str, Any],
) -> Any:
    """Resumable filtered scan of one table: yields pages, tracks the cursor per entity."""
    ddb = ctx.client("dynamodb")
    state = ctx.cursors_as(EntityScans).entity(e.name)  # resync's model extends it
    if state.done:
        return
    extra: dict[str, Any] = {"FilterExpression": filter_expr, "ExpressionAttributeNames": names}
    if values:
        extra["ExpressionAttributeValues"] = {k: dynamo.av(v) for k, v in values.items()}
    for page, last_key in dynamo.scan_pages(
        ddb, table, start_key=state.key, clock=ctx.clock, **extra
    ):
        ctx.clock.check()
        applied = yield page
        state.count += int(applied or 0)
        if last_key:
            state.key = last_key
        else:
            state.key, state.done = None, True
        ctx.progress(table, state.count, None)
        ctx.checkpoint()


def _drive(gen: Any, handle: Any) -> None:
    try:
        page = next(gen)
        while True:
            page = gen.send(handle(page))
    except StopIteration:
        return


class RemoveParams(EntitiesParams):
    # conditional deletes in flight (each one only if the item still carries this run's
    # timestamp, so BatchWriteItem, which cannot hold a condition, is never used here)
    in_flight: int = Field(default=16, ge=1, le=64)


def run_remove(ctx: ActionContext, p: RemoveParams) -> dict[str, Any]:
    ddb = ctx.client("dynamodb")
    cond = "#upd = :ts AND attribute_exists(#cb)"
    names = {"#upd": UPDATED_AT, "#cb": CREATED_BY}
    values = {":ts": ctx.migration_ts}
    out: dict[str, int] = {}
    pool = ThreadPoolExecutor(p.in_flight, thread_name_prefix="remove")
    try:
        for name in p.entities:
            e = entity_spec(ctx.runbook, name)
            pk, sk = target_keys(ctx.runbook, e)

            def delete_one(item: dict[str, Any], e: EntitySpec = e, pk=pk, sk=sk) -> bool:
                key = {pk: item[pk], sk: item[sk]}
                return dynamo.conditional_delete(ddb, e.target, key, cond, values, names, ctx.clock)

            def delete_page(page: list[dict[str, Any]], e: EntitySpec = e) -> int:
                # chunks of in_flight deletes; each chunk is counted once answered, so a stop
                # between chunks keeps the count exact (the re-scan skips deleted items)
                state = ctx.cursors_as(EntityScans).entity(e.name)
                for start in range(0, len(page), p.in_flight):
                    ctx.clock.check(min(p.in_flight, len(page) - start))
                    chunk = page[start : start + p.in_flight]
                    state.count += sum(pool.map(delete_one, chunk))
                return 0

            if dynamo.table_exists(ddb, e.target):
                _drive(_entity_scan(ctx, e, e.target, cond, names, values), delete_page)
            out[name] = ctx.cursors_as(EntityScans).count(name)
    except Interrupted:
        ctx.checkpoint(force=True)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    ctx.checkpoint(force=True)
    return {"removed": sum(out.values()), "entities": out}


def plan_remove(rb: Runbook, p: RemoveParams) -> list[PlannedCall]:
    calls = []
    for name in p.entities:
        e = rb.find_entity(name)
        if e:
            calls.append(PlannedCall("dynamodb", "Scan", e.target, "updatedAt = migration ts"))
            calls.append(
                PlannedCall("dynamodb", "DeleteItem", e.target, "only if updatedAt = migration ts")
            )
    return calls


# --- rollback: resync_legacy -------------------------------------------------------------------


def run_resync(ctx: ActionContext, p: EntitiesParams) -> dict[str, Any]:
    ddb = ctx.client("dynamodb")
    out: dict[str, int] = {}
    c = ctx.cursors_as(ResyncCursors)
    skipped, duplicates = c.skipped, c.duplicate_keys
    try:
        for name in p.entities:
            e = entity_spec(ctx.runbook, name)

            def put_page(page: list[dict[str, Any]], e: EntitySpec = e) -> int:
                nonlocal skipped, duplicates
                items = []
                for item in page:
                    legacy = to_legacy(e, item, ctx.migration_ts)
                    if classify_legacy(e, legacy) is not None:
                        skipped += 1
                        continue
                    items.append((legacy, str(item.get(UPDATED_AT, ""))))
                # BatchWriteItem rejects a batch naming one key twice (one user's item in two
                # companies): the legacy table holds one, so keep the latest-updated copy
                unique = dedupe_by_key(items, source_keys(ctx.runbook, e))
                duplicates += len(items) - len(unique)
                c.skipped, c.duplicate_keys = skipped, duplicates
                ctx.clock.check(len(unique))  # the operator's rate paces these writes
                return dynamo.batch_write(ddb, e.source, dynamo.put_requests(unique), ctx.clock)

            if not dynamo.table_exists(ddb, e.target):
                ctx.log(f"{e.target} does not exist: nothing to re-sync", "warning")
            elif not dynamo.table_exists(ddb, e.source):
                raise RuntimeError(f"{e.source} does not exist: restore it before re-syncing")
            else:
                scan = _entity_scan(
                    ctx, e, e.target, "attribute_exists(#cb)", {"#cb": CREATED_BY}, {}
                )
                _drive(scan, put_page)
            out[name] = c.count(name)
    except Interrupted:
        ctx.checkpoint(force=True)
        raise
    ctx.checkpoint(force=True)
    if duplicates:
        ctx.log(
            f"{duplicates} company-scoped items shared a legacy key with another: the "
            "latest-updated copy was written back",
            "warning",
        )
    return {
        "resynced": sum(out.values()),
        "entities": out,
        "skipped": skipped,
        "duplicate_keys": duplicates,
    }


def plan_resync(rb: Runbook, p: EntitiesParams) -> list[PlannedCall]:
    calls = []
    for name in p.entities:
        e = rb.find_entity(name)
        if e:
            calls.append(PlannedCall("dynamodb", "Scan", e.target, "items with createdBy"))
            calls.append(PlannedCall("dynamodb", "BatchWriteItem", e.source, "inverse transform"))
    return calls


ACTIONS = (
    Action(
        "remove_migrated_items",
        RemoveParams,
        run_remove,
        plan_remove,
        "Rollback: delete target items this run wrote (updatedAt = migration timestamp)",
        cursors=EntityScans,
        summary=RemoveMigratedSummary,
    ),
    Action(
        "resync_legacy",
        EntitiesParams,
        run_resync,
        plan_resync,
        "Rollback: write company-scoped items back to the legacy tables (inverse transform)",
        cursors=ResyncCursors,
        summary=ResyncSummary,
    ),
)
