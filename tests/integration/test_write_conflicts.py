"""Issue 19, deliverable 5: migrate_entity beside the live application. An item inside a request
in flight answers PutItem with TransactionConflictException (neither botocore nor
THROTTLE_CODES retries it) and cancels a transaction with the reason TransactionConflict: both
paths wait a jittered backoff and try again, and count the conflicts in the summary and the
report. While dual-write is on, transactions are at most `transact_size_dual_write` items."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from engine.actions.migrate.entity import DUAL_WRITE_TRANSACT_ITEMS
from engine.actions.traffic.flags import journaled_flag
from engine.run.report import render_report
from tests.support import tui_states as states
from tests.support.actions import run
from tests.support.aws_inject import fail_first
from tests.support.transact import TRANSACT, Calls, answer_transactions, target_items
from tests.support.write_path import N, mapped


def _sleeps(ctx: Any) -> list[float]:
    slept: list[float] = []
    ctx.clock.sleep_real = slept.append  # the waits are what count here, not the wall time
    return slept


def test_put_path_retries_a_transaction_conflict_and_counts_it(aws, make_ctx, runbook):
    ddb, ctx = mapped(aws, make_ctx, runbook)
    refused = fail_first(ddb, "PutItem", "TransactionConflictException", 3)
    mctx, _ = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    slept = _sleeps(mctx)
    m = run(mctx, "migrate_entity", {"entity": "expenses", "write_path": "put", "in_flight": 1})
    assert m["migrated"] == N and m["conflicts"] == 3
    assert len(refused) == N + 3  # each refused put was sent again
    assert len(slept) >= 3 and all(s > 0 for s in slept[:3])  # backed off, jittered
    assert len(target_items(ddb)) == N


def test_transact_path_backs_off_conflict_rounds_and_counts_them(aws, make_ctx, runbook, tmp_path):
    ddb, ctx = mapped(aws, make_ctx, runbook)

    def conflict_first_two(n: int, request: Any) -> dict[str, Any] | None:
        if n > 2:
            return None
        items = json.loads(request.body)["TransactItems"]
        return {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": "Transaction cancelled",
            "CancellationReasons": [{"Code": "TransactionConflict"}]
            + [{"Code": "None"}] * (len(items) - 1),
        }

    sent = answer_transactions(ddb, conflict_first_two)
    calls = Calls(ddb)
    mctx, _ = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    slept = _sleeps(mctx)
    m = run(mctx, "migrate_entity", {**TRANSACT, "in_flight": 1, "segments": 1})
    assert m["migrated"] == N and m["conflicts"] == 2
    assert calls.count.get("PutItem", 0) == 0  # retried as transactions, none went alone
    assert sent[0] == len(calls.sizes) and len(slept) >= 2 and all(s > 0 for s in slept)

    # the report counts them
    text = render_report(states.engine_for(runbook, mctx.journal, tmp_path), None)
    assert "TransactionConflict, retried with backoff): 2 (migrate-expenses 2" in text


def test_conflict_rounds_end_item_by_item(aws, make_ctx, runbook):
    """A transaction that keeps conflicting goes item by item after a few backed-off rounds."""
    ddb, ctx = mapped(aws, make_ctx, runbook)

    def always_conflict(n: int, request: Any) -> dict[str, Any] | None:
        items = json.loads(request.body)["TransactItems"]
        return {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": "Transaction cancelled",
            "CancellationReasons": [{"Code": "TransactionConflict"}] * len(items),
        }

    answer_transactions(ddb, always_conflict)
    calls = Calls(ddb)
    mctx, _ = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    _sleeps(mctx)
    m = run(mctx, "migrate_entity", {**TRANSACT, "in_flight": 1})
    assert m["migrated"] == N and m["written_alone"] == N
    assert calls.count["PutItem"] == N and m["conflicts"] >= N


def test_dual_write_on_limits_the_transaction_size(aws, make_ctx, runbook):
    ddb, ctx = mapped(aws, make_ctx, runbook)
    assert journaled_flag(ctx, "DUAL_WRITE_ENABLED") is None
    ctx.journal.step("enable-dual-write").started_at = datetime.now(UTC)  # set to "true"
    assert journaled_flag(ctx, "DUAL_WRITE_ENABLED") == "true"
    calls = Calls(ddb)
    mctx, events = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    m = run(mctx, "migrate_entity", TRANSACT)
    assert m["migrated"] == N and m["transact_size"] == DUAL_WRITE_TRANSACT_ITEMS == 10
    assert calls.sizes and max(calls.sizes) <= 10
    said = [getattr(e, "message", "") for e in events]
    assert any("up to 10" in s and "dual-write is on" in s for s in said)


def test_dual_write_off_again_after_its_rollback(aws, make_ctx, runbook):
    _, ctx = mapped(aws, make_ctx, runbook)
    j = ctx.journal
    j.step("enable-dual-write").started_at = datetime(2026, 1, 1, 9, tzinfo=UTC)
    j.step("enable-dual-write").cursors = {
        "flags": {runbook.flags.functions[0]: {"prior": {"DUAL_WRITE_ENABLED": "false"}}}
    }
    rollback = runbook.find_rollback("rollback-dual-write")
    index = next(i for i, s in enumerate(rollback.steps) if s.action == "restore_flags")
    j.rollback_steps[f"rollback-dual-write#{index}"] = type(j.step("x"))(
        started_at=datetime(2026, 1, 1, 10, tzinfo=UTC)
    )
    assert journaled_flag(ctx, "DUAL_WRITE_ENABLED") == "false"
