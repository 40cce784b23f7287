"""The step-functions copy's outcomes into the step's ledger: every item the state machine did
not simply migrate left one object (the item, its outcome, why); the local path's reasons are
recomputed from each item, so both backends' ledgers read the same."""

from __future__ import annotations

import json
from typing import Any

from engine.actions.analyze.legacy import key_text, open_index, source_keys
from engine.actions.migrate.ledger import TARGET_REJECTED, Ledger
from engine.aws import dynamo
from engine.aws.target_fit import TargetShape, why_unfit
from engine.core.context import ActionContext
from engine.runbook.model import EntitySpec
from engine.runbook.transforms import classify_legacy, to_company_scoped


def settle(
    ctx: ActionContext,
    bucket: str,
    outcomes_prefix: str,
    e: EntitySpec,
    shape: TargetShape,
    ledger: Ledger,
) -> dict[str, int]:
    """Read the outcome objects into the ledger (the local path's reasons, recomputed from
    each item); returns the counts per outcome."""
    s3 = ctx.client("s3")
    skeys = source_keys(ctx.runbook, e)
    index = open_index(ctx)
    counts = {"skipped_newer": 0, "collision": 0, "quarantined": 0}
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=outcomes_prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                got = json.loads(body)
                outcome = str(got["outcome"])
                counts[outcome] = counts.get(outcome, 0) + 1
                item = dynamo.to_python(got["Item"])
                skey = key_text(item, skeys)
                if outcome == "quarantined":
                    ledger.quarantine(skey, _reason(ctx, e, shape, item, got), item)
                elif outcome == "collision":
                    why, existing = _collision(e, item, got, index)
                    user = str(item.get(e.user_attr, ""))
                    company = str(got.get("company", ""))
                    ident = str(item.get(e.id_attr, ""))
                    ledger.collision(skey, company, ident, user, why, existing, item)
                ctx.clock.check()
    finally:
        if index is not None:
            index.close()
    ledger.db.commit()
    return counts


def _reason(
    ctx: ActionContext, e: EntitySpec, shape: TargetShape, item: dict[str, Any], got: Any
) -> str:
    if got.get("why") == "rejected":
        cause = str(got.get("error", ""))
        return TARGET_REJECTED + cause.split(" (Service:")[0].split(" (Status Code:")[0]
    reason = classify_legacy(e, item)
    if reason is not None:
        return reason
    new = to_company_scoped(e, item, str(got.get("company", "-")), ctx.migration_ts)
    return why_unfit(shape, new) or "quarantined by the state machine"


def _collision(e: EntitySpec, item: dict[str, Any], got: Any, index: Any) -> tuple[str, str]:
    why = str(got.get("why", ""))
    if why == "known" and index is not None:
        reason, existing = index.collision_reason(
            e.name, str(got.get("company", "")), str(item.get(e.id_attr, ""))
        )
        return str(reason), str(existing)
    if why == "target-owned-by-other":
        old = dynamo.to_python(got.get("old") or {})
        return why, str(old.get("createdBy", ""))
    return why, str(item.get(e.user_attr, ""))
