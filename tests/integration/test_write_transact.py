"""migrate_entity's "transact" write path (issue 12): conditional TransactWriteItems of up to
100 items, the same outcomes as the per-item path, a cancelled transaction settled item by
item, throttling halving the window, and a target without transactions falling back to
PutItem. moto answers TransactWriteItems for real; faults are injected before the request is
sent, as DynamoDB would answer."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest

from engine.actions.migrate import write as migrate_write
from engine.actions.migrate.write import MAX_TRANSACT_BYTES, Prepared, split_transactions
from engine.aws import dynamo
from engine.core.clock import Interrupted
from engine.core.events import LogLine, Progress
from engine.state.journal import Target
from tests.support.actions import run
from tests.support.aws_inject import fail_first
from tests.support.transact import (
    TRANSACT,
    Calls,
    answer_transactions,
    target_items,
)
from tests.support.write_path import T_EXPENSES, N, mapped


def app_writes(ddb: Any) -> None:
    """What dual-write left in the target before the step: a newer edit by the owner, and a key
    another user already holds."""
    ddb.put_item(
        TableName=T_EXPENSES,
        Item=dynamo.to_dynamo(
            {
                "companyId": "comp-a",
                "expenseId": "exp-0010",
                "createdBy": "user-a",
                "updatedAt": "2099-01-01T00:00:00Z",
                "amount": Decimal(999),
            }
        ),
    )
    ddb.put_item(
        TableName=T_EXPENSES,
        Item=dynamo.to_dynamo(
            {
                "companyId": "comp-a",
                "expenseId": "exp-0020",
                "createdBy": "user-z",
                "updatedAt": "2020-01-01T00:00:00Z",
            }
        ),
    )


def test_transactions_carry_the_items_and_match_the_put_path(aws, make_ctx, runbook):
    ddb, ctx = mapped(aws, make_ctx, runbook)
    calls = Calls(ddb)
    mctx, events = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    m = run(mctx, "migrate_entity", TRANSACT)
    assert m["migrated"] == N and m["scanned"] == N and m["collisions"] == 0
    assert calls.count.get("PutItem", 0) == 0
    assert m["write_path"] == "transact" and m["written_alone"] == 0
    # pages of 150: a transaction of 100, then one of 50 per page
    assert sorted(calls.sizes) == sorted([100, 50] * (N // 150) + [100] * ((N % 150) // 100))
    by_transaction = target_items(ddb)

    # the per-item path writes the very same items
    ddb2, ctx2 = mapped_again(aws, make_ctx, runbook, ddb)
    pctx, _ = make_ctx("migrate-expenses", aws, journal=ctx2.journal)
    assert run(pctx, "migrate_entity", {"entity": "expenses"})["migrated"] == N
    by_put = target_items(ddb2)
    for item in (*by_transaction.values(), *by_put.values()):
        item.pop("migratedAt", None)  # the two runs are a moment apart
    assert by_transaction == by_put
    assert any(isinstance(e, Progress) and e.in_flight for e in events)
    said = [getattr(e, "message", "") for e in events]
    assert any("TransactWriteItems of up to 100" in m and "2 WCU" in m for m in said)


def mapped_again(aws: Any, make_ctx: Any, runbook: Any, ddb: Any) -> tuple[Any, Any]:
    """The target emptied and the mapping re-done on a fresh journal."""
    for item in target_items(ddb).values():
        ddb.delete_item(
            TableName=T_EXPENSES,
            Key=dynamo.to_dynamo({"companyId": item["companyId"], "expenseId": item["expenseId"]}),
        )
    ctx, _ = make_ctx("mapping-document", aws)
    run(ctx, "company_mapping", {"apply": True})
    return ddb, ctx


def test_a_cancelled_transaction_keeps_the_application_items(aws, make_ctx, runbook):
    ddb, ctx = mapped(aws, make_ctx, runbook)
    app_writes(ddb)
    calls = Calls(ddb)
    mctx, _ = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    m = run(mctx, "migrate_entity", TRANSACT)
    assert m["migrated"] == N - 2 and m["skipped_newer"] == 1 and m["collisions"] == 1
    items = target_items(ddb)
    assert items["exp-0010"]["amount"] == 999  # the application's edit stands
    assert items["exp-0020"]["createdBy"] == "user-z"  # another user's key is not taken
    assert len(items) == N
    # the failed conditions were settled from the items the cancellation returned: the one
    # cancelled transaction was retried once without them, and no item went alone
    assert calls.count.get("PutItem", 0) == 0
    assert len(calls.sizes) == N // 150 * 2 + 1 + 1
    collisions = mctx.artifact("collisions-expenses.jsonl").read_text().splitlines()
    assert [json.loads(c)["id"] for c in collisions] == ["exp-0020"]


def test_throttled_transactions_halve_the_window_and_lose_nothing(aws, make_ctx, runbook):
    ddb, ctx = mapped(aws, make_ctx, runbook)

    def throttle_every_third(n: int, request: Any) -> dict[str, Any] | None:
        if n % 3:
            return None
        items = json.loads(request.body)["TransactItems"]
        return {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": "Transaction cancelled",
            "CancellationReasons": [{"Code": "ThrottlingError"}]
            + [{"Code": "None"}] * (len(items) - 1),
        }

    sent = answer_transactions(ddb, throttle_every_third)
    calls = Calls(ddb)
    mctx, events = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    m = run(mctx, "migrate_entity", {**TRANSACT, "in_flight": 4})
    assert m["migrated"] == N and m["quarantined"] == 0
    throttled = sent[0] // 3
    assert len(calls.sizes) == sent[0] and throttled >= 2  # each cancelled one was sent again
    assert calls.count.get("PutItem", 0) == 0
    assert mctx.throttle.state().throttled >= 1
    windows = [e.in_flight[1] for e in events if isinstance(e, Progress) and e.in_flight]
    assert min(windows) < 4
    assert len(target_items(ddb)) == N


def test_a_target_without_transactions_falls_back_to_put(aws, make_ctx, runbook):
    ddb, ctx = mapped(aws, make_ctx, runbook)
    sent = answer_transactions(
        ddb, lambda n, r: {"__type": "com.amazon.coral.service#UnknownOperationException"}
    )
    calls = Calls(ddb)
    mctx, events = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    m = run(mctx, "migrate_entity", TRANSACT)
    assert m["migrated"] == N
    assert 1 <= sent[0] <= 4  # once per chunk already in flight, then item by item
    assert calls.count["PutItem"] == N
    assert m["write_path"] == "put"  # as taken, not as asked: the summary says which ran
    assert any("no TransactWriteItems" in getattr(e, "message", "") for e in events)
    assert len(target_items(ddb)) == N


def test_a_request_the_target_rejects_is_written_item_by_item(aws, make_ctx, runbook):
    ddb, ctx = mapped(aws, make_ctx, runbook)
    rejected: list[int] = []

    def reject_first(n: int, request: Any) -> dict[str, Any] | None:
        if n > 1:
            return None
        rejected.append(len(json.loads(request.body)["TransactItems"]))
        return {
            "__type": "com.amazon.coral.validate#ValidationException",
            "message": "Transaction request cannot include multiple operations on one item",
        }

    answer_transactions(ddb, reject_first)
    calls = Calls(ddb)
    mctx, _ = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    m = run(mctx, "migrate_entity", TRANSACT)
    assert m["migrated"] == N and m["quarantined"] == 0
    assert calls.count["PutItem"] == rejected[0]  # the rejected transaction's items, alone
    assert m["written_alone"] == rejected[0] and m["write_path"] == "transact"
    assert len(target_items(ddb)) == N


def test_a_stop_mid_run_resumes_with_exact_counts(aws, make_ctx, runbook):
    ddb, ctx = mapped(aws, make_ctx, runbook)
    mctx, _ = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    done = [0]

    def stop_after_two(**_: Any) -> None:
        done[0] += 1
        if done[0] == 2:
            mctx.clock.stop.set()

    ddb.meta.events.register("after-call.dynamodb.TransactWriteItems", stop_after_two)
    with pytest.raises(Interrupted):
        run(mctx, "migrate_entity", {**TRANSACT, "in_flight": 1})
    ddb.meta.events.unregister("after-call.dynamodb.TransactWriteItems", stop_after_two)
    saved = mctx.journal.step("migrate-expenses").cursors["counts"]
    assert saved["migrated"] == saved["scanned"] == 150  # the applied page, not the one cut
    assert saved["written_alone"] == 0
    again, _ = make_ctx("migrate-expenses", aws, journal=mctx.journal)
    m = run(again, "migrate_entity", TRANSACT)
    assert m["migrated"] == N and m["scanned"] == N
    assert len(target_items(ddb)) == N


def prepared(n: int, key: str, size: int = 300) -> tuple[int, Prepared]:
    return n, Prepared(f"s{n}", {}, "u", "c", key, {}, ("c", key), size)


def test_transactions_split_by_count_size_and_repeated_keys() -> None:
    items = [prepared(n, f"k{n}") for n in range(250)]
    assert [len(g) for g in split_transactions(items, 100)] == [100, 100, 50]
    big = [prepared(n, f"k{n}", size=MAX_TRANSACT_BYTES // 3) for n in range(7)]
    assert [len(g) for g in split_transactions(big, 100)] == [3, 3, 1]
    twice = [prepared(0, "a"), prepared(1, "b"), prepared(2, "a"), prepared(3, "c")]
    groups = list(split_transactions(twice, 100))
    assert [[n for n, _ in g] for g in groups] == [[0, 1], [2, 3]]  # order kept
    assert [n for g in split_transactions(items, 7) for n, _ in g] == list(range(250))


def test_the_plan_names_the_transaction_and_its_cost(runbook):
    from engine.actions.migrate.entity import MigrateParams, plan_migrate

    def write(params: MigrateParams) -> Any:  # the last call but the two estimates
        return [c for c in plan_migrate(runbook, params) if c.service != "estimate"][-1]

    calls = write(MigrateParams(entity="expenses", write_path="transact"))
    assert calls.operation == "TransactWriteItems" and "2 WCU" in calls.note
    assert write(MigrateParams(entity="expenses")).operation == (
        "TransactWriteItems"  # the default, chosen by measurement (docs/performance.md)
    )
    put = MigrateParams(entity="expenses", write_path="put")
    assert write(put).operation == "PutItem"
    assert put.in_flight == 16 and MigrateParams(entity="expenses").in_flight == 2
    assert MigrateParams(entity="expenses", write_path="put", in_flight=4).in_flight == 4
    with pytest.raises(ValueError):
        MigrateParams(entity="expenses", write_path="transact", transact_size=101)


def test_a_stop_cuts_the_per_item_fallback_short(aws, make_ctx, runbook):
    ddb, ctx = mapped(aws, make_ctx, runbook)
    refusing = [True]
    refuse = answer_transactions(
        ddb,
        lambda n, r: (
            {"__type": "com.amazon.coral.validate#ValidationException"} if refusing[0] else None
        ),
    )
    mctx, _ = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    puts = [0, 0]  # before the stop, after it

    def count_and_stop(**_: Any) -> None:
        puts[mctx.clock.stop.is_set()] += 1
        if puts[0] == 30:
            mctx.clock.stop.set()  # the operator's stop, while items go one by one

    ddb.meta.events.register("before-call.dynamodb.PutItem", count_and_stop)
    with pytest.raises(Interrupted):
        run(mctx, "migrate_entity", {**TRANSACT, "in_flight": 2})
    ddb.meta.events.unregister("before-call.dynamodb.PutItem", count_and_stop)
    assert refuse[0] <= 2 and puts[1] <= 2  # each writer stops before its next item
    assert mctx.journal.step("migrate-expenses").cursors["counts"]["scanned"] == 0
    again, _ = make_ctx("migrate-expenses", aws, journal=mctx.journal)
    refusing[0] = False  # the target takes them again
    m = run(again, "migrate_entity", TRANSACT)
    assert m["migrated"] == N and len(target_items(ddb)) == N


@pytest.mark.parametrize("kind", ["endpoint", "embedded"])
def test_slow_transactions_on_an_emulator_switch_the_step_to_put(aws, make_ctx, runbook, kind):
    """A stock moto server copies the table per item of a transaction: on an emulator endpoint
    the first slow transaction switches the step to conditional PutItem, said once with what to
    do; the embedded world (patched moto) and AWS keep transactions and get no advice."""
    ddb, ctx = mapped(aws, make_ctx, runbook)
    ctx.journal.run.target = Target(kind=kind, identity="http://127.0.0.1:5000", region="us-east-1")
    mctx, events = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    calls = Calls(ddb)
    with pytest.MonkeyPatch.context() as patch:  # every transaction counts as slow
        patch.setattr(migrate_write, "SLOW_TRANSACTION_SECONDS", 0.0)
        summary = run(mctx, "migrate_entity", {**TRANSACT, "segments": 1, "in_flight": 1})
    assert summary["migrated"] == N
    assert target_items(ddb).keys() == {f"exp-{n:04d}" for n in range(N)}
    told = [e.message for e in events if isinstance(e, LogLine) and "write_path" in e.message]
    if kind == "endpoint":
        assert len(told) == 1, told
        assert re.search(r"took \d+ s on this endpoint", told[0]) and "embedded world" in told[0]
        assert 'write_path = "put" on step migrate-expenses' in told[0]
        assert calls.count["TransactWriteItems"] == 1
        assert calls.count["PutItem"] == N - calls.sizes[0]
        assert summary["write_path"] == "put"
    else:
        assert told == []
        assert "PutItem" not in calls.count and summary["write_path"] == "transact"


def test_a_server_error_on_an_emulator_switches_the_step_to_put(aws, make_ctx, runbook):
    """A stock moto server can fail a transaction under concurrent writes (HTTP 500): on an
    emulator the step goes on item by item, nothing lost."""
    ddb, ctx = mapped(aws, make_ctx, runbook)
    ctx.journal.run.target = Target(kind="endpoint", identity="http://10.0.0.2", region="us-east-1")
    mctx, events = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    failed = fail_first(ddb, "TransactWriteItems", "InternalServerError", 100, status=500)
    summary = run(mctx, "migrate_entity", {**TRANSACT, "segments": 1, "in_flight": 1})
    assert summary["migrated"] == N and summary["write_path"] == "put"
    assert target_items(ddb).keys() == {f"exp-{n:04d}" for n in range(N)}
    assert 1 <= len(failed) <= dynamo.MAX_ATTEMPTS  # one request, retried; then no more
    told = [e.message for e in events if isinstance(e, LogLine) and "HTTP 500" in e.message]
    assert len(told) == 1 and "write_path" in told[0]
