"""Items the target cannot hold are set aside, never abort a step (issue 8, item 1), and the
legacy re-sync never sends one key twice in a batch (issue 8, item 3).

Pure checks of engine/aws/target_fit.py first, then the data actions against moto, including the
cases moto hides: it writes a number into a GSI key declared S. Every legacy item is one AWS
could hold (at most 400 KB by DynamoDB's count; the suite's moto refuses where DynamoDB does:
engine/rehearsal/moto_fidelity.py); one passes the limit only once company-scoped. A refusal
the checks cannot foresee is AWS's answer injected for one item (tests/support/aws_inject.py)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from engine.actions.migrate.ledger import ledger_name
from engine.aws import dynamo
from engine.aws.target_fit import (
    MAX_ITEM_BYTES,
    REASON_PREFIX,
    item_size,
    number_size,
    shape_from_description,
    value_size,
    why_unfit,
)
from engine.checks import registry as checks
from engine.rehearsal.seed import create_table
from engine.runbook.transforms import dedupe_by_key, to_company_scoped
from tests.support.actions import run
from tests.support.aws_inject import refuse_item
from tests.support.world import MIGRATION_TS

EXPENSES = "construction-expenses-multi-table-expenses"
T_EXPENSES = "construction-expenses-company-expenses"
MEMBERS = "construction-expenses-company-users"

COMPANY_EXPENSES = {  # as DescribeTable reports the bundled runbook's company expenses table
    "TableName": T_EXPENSES,
    "AttributeDefinitions": [
        {"AttributeName": "companyId", "AttributeType": "S"},
        {"AttributeName": "expenseId", "AttributeType": "S"},
        {"AttributeName": "invoiceNum", "AttributeType": "S"},
        {"AttributeName": "amountKey", "AttributeType": "N"},
    ],
    "KeySchema": [
        {"AttributeName": "companyId", "KeyType": "HASH"},
        {"AttributeName": "expenseId", "KeyType": "RANGE"},
    ],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": "invoiceNum-index",
            "KeySchema": [{"AttributeName": "invoiceNum", "KeyType": "HASH"}],
        }
    ],
    "LocalSecondaryIndexes": [
        {
            "IndexName": "amount-lsi",
            "KeySchema": [
                {"AttributeName": "companyId", "KeyType": "HASH"},
                {"AttributeName": "amountKey", "KeyType": "RANGE"},
            ],
        }
    ],
}
SHAPE = shape_from_description(COMPANY_EXPENSES)
GOOD = {"companyId": "c1", "expenseId": "e1", "invoiceNum": "INV-1", "amount": Decimal("12.5")}


def test_key_types_and_empty_keys_by_the_declared_schema() -> None:
    assert why_unfit(SHAPE, GOOD) is None
    assert why_unfit(SHAPE, {k: v for k, v in GOOD.items() if k != "invoiceNum"}) is None  # sparse
    number = why_unfit(SHAPE, {**GOOD, "invoiceNum": Decimal(42)})
    assert number is not None and number.startswith(REASON_PREFIX)
    assert "invoiceNum is a number" in number and "invoiceNum-index" in number
    assert "declared S" in number
    empty = why_unfit(SHAPE, {**GOOD, "invoiceNum": ""})
    assert empty is not None and "invoiceNum is empty" in empty
    assert "sort key" in str(why_unfit(SHAPE, {**GOOD, "expenseId": ""}))
    missing = why_unfit(SHAPE, {k: v for k, v in GOOD.items() if k != "companyId"})
    assert missing is not None and "companyId is missing" in missing
    lsi = why_unfit(SHAPE, {**GOOD, "amountKey": "12"})
    assert lsi is not None and "amount-lsi" in lsi and "declared N" in lsi
    assert why_unfit(SHAPE, {**GOOD, "amountKey": Decimal(12)}) is None
    assert "true" not in str(why_unfit(SHAPE, {**GOOD, "invoiceNum": True}))
    assert "a boolean" in str(why_unfit(SHAPE, {**GOOD, "invoiceNum": True}))
    long_pk = why_unfit(SHAPE, {**GOOD, "companyId": "c" * 2049})
    assert long_pk is not None and "at most 2,048" in long_pk
    assert why_unfit(SHAPE, {**GOOD, "expenseId": "e" * 1025}) is not None
    assert why_unfit(SHAPE, {**GOOD, "expenseId": "é" * 512}) is None  # 1024 UTF-8 bytes


def test_item_size_by_dynamodb_rules() -> None:
    assert value_size("héllo") == 6  # UTF-8 bytes
    assert number_size(Decimal("12345")) == 4  # 5 significant digits: 3 bytes + 1
    assert number_size(Decimal("1000000")) == number_size(Decimal(1)) == 2  # zeros trimmed
    assert number_size(Decimal("0.00012")) == 2
    assert number_size(Decimal("-7")) == 3
    assert value_size(True) == value_size(None) == 1
    assert value_size(b"\x00\x01\x02") == 3
    assert value_size({"ab"}) == 2 and value_size({Decimal(1), Decimal(22)}) == 4
    assert value_size([]) == value_size({}) == 3
    assert value_size(["ab", Decimal(1)]) == 3 + (2 + 1) + (2 + 1)
    assert value_size({"k": "ab"}) == 3 + 1 + 2 + 1
    assert item_size({"name": "ab", "n": Decimal(12)}) == 4 + 2 + 1 + 2


def test_an_item_that_passes_400_kb_once_company_scoped(runbook: Any) -> None:
    e = runbook.entity("expenses")
    legacy = big_legacy_expense()
    assert item_size(legacy) <= MAX_ITEM_BYTES
    scoped = to_company_scoped(e, legacy, "comp-a", MIGRATION_TS)
    assert item_size(scoped) > MAX_ITEM_BYTES
    reason = why_unfit(SHAPE, scoped)
    assert reason is not None and "limit is 409,600" in reason


def test_dedupe_by_key_keeps_the_latest_copy() -> None:
    a_old = {"userId": "u", "expenseId": "e1", "amount": 1}
    a_new = {"userId": "u", "expenseId": "e1", "amount": 2}
    b = {"userId": "u", "expenseId": "e2", "amount": 3}
    ranked = [(a_new, "2025-01-02"), (b, "2025-01-01"), (a_old, "2025-01-01")]
    assert dedupe_by_key(ranked, ["userId", "expenseId"]) == [a_new, b]
    assert dedupe_by_key([(a_old, "x"), (a_new, "x")], ["userId", "expenseId"]) == [a_new]


# --- against moto ------------------------------------------------------------------------------


def big_legacy_expense() -> dict[str, Any]:
    """A legacy expense 20 bytes under 400 KB by DynamoDB's count (so the legacy table holds
    it, on AWS as in the suite's moto) that is over it once company-scoped."""
    base = {
        "userId": "user-01",
        "expenseId": "exp-big",
        "amount": Decimal(1),
        "date": "2024-01-01",
        "readings": [Decimal(1)] * 2500,  # 3 bytes each by DynamoDB's count
        "notes": "",
    }
    base["notes"] = "n" * (MAX_ITEM_BYTES - 20 - item_size(base))
    return base


UNFORESEEN = "exp-unforeseen"  # an ordinary item that the target refuses (refuse_item)


def build(aws: Any, runbook: Any) -> None:
    ddb = aws.client("dynamodb")
    for spec in runbook.inventory.tables:
        create_table(ddb, spec)
    res = aws.resource("dynamodb")
    with res.Table(MEMBERS).batch_writer() as w:
        for n in range(3):
            w.put_item(Item={"companyId": f"comp-{n}", "userId": f"user-0{n}", "role": "admin"})
    with res.Table(EXPENSES).batch_writer() as w:
        for n in range(60):
            w.put_item(
                Item={
                    "userId": f"user-0{n % 3}",
                    "expenseId": f"exp-{n:03d}",
                    "amount": Decimal(n),
                    "date": "2024-02-02",
                    "invoiceNum": f"INV-{n}",
                }
            )
        base = {"userId": "user-00", "amount": Decimal(3), "date": "2024-03-03"}
        w.put_item(Item={**base, "expenseId": "exp-inv-number", "invoiceNum": Decimal(1234)})
        w.put_item(Item={**base, "expenseId": "exp-inv-empty", "invoiceNum": ""})
        w.put_item(Item={**base, "userId": "user-02", "expenseId": UNFORESEEN, "invoiceNum": "I"})
    ddb.put_item(TableName=EXPENSES, Item=dynamo.to_dynamo(big_legacy_expense()))
    assert item_size(big_legacy_expense()) <= MAX_ITEM_BYTES  # a world AWS could hold


UNFIT = {"exp-inv-number", "exp-inv-empty", "exp-big"}  # the check sees these
REJECTED = UNFIT | {UNFORESEEN}  # plus the one only the write finds


def record_puts(ddb: Any) -> list[str]:
    """expenseIds of every item the client sends, by PutItem or inside a TransactWriteItems
    (an observer, the call goes on)."""
    sent: list[str] = []

    def note(params: dict[str, Any], **_: Any) -> None:
        sent.append(params["Item"]["expenseId"]["S"])

    def note_each(params: dict[str, Any], **_: Any) -> None:
        sent.extend(x["Put"]["Item"]["expenseId"]["S"] for x in params["TransactItems"])

    ddb.meta.events.register("provide-client-params.dynamodb.PutItem", note)
    ddb.meta.events.register("provide-client-params.dynamodb.TransactWriteItems", note_each)
    return sent


@pytest.mark.parametrize("write_path", ["put", "transact"])
def test_items_the_target_cannot_hold_are_set_aside(aws, make_ctx, runbook, write_path):
    build(aws, runbook)
    ddb = aws.client("dynamodb")
    e = runbook.entity("expenses")
    # what moto hides: it writes a number into the invoiceNum-index key declared S
    hidden = to_company_scoped(
        e, {"userId": "u", "expenseId": "probe", "invoiceNum": Decimal(1)}, "c", MIGRATION_TS
    )
    ddb.put_item(TableName=T_EXPENSES, Item=dynamo.to_dynamo(hidden))
    ddb.delete_item(
        TableName=T_EXPENSES, Key=dynamo.to_dynamo({"companyId": "c", "expenseId": "probe"})
    )

    ctx, _ = make_ctx("mapping-document", aws)
    run(ctx, "company_mapping", {"apply": True})
    actx, _ = make_ctx("analyze-data-volume", aws, journal=ctx.journal)
    a = run(actx, "analyze_legacy", {"entities": ["expenses"]})
    assert a["unfit_for_target"] == 3 and a["malformed"] == 0
    rows = [json.loads(x) for x in actx.artifact("quarantine.jsonl").read_text().splitlines()]
    assert {r["key"]["expenseId"] for r in rows} == UNFIT
    by_id = {r["key"]["expenseId"]: r["reason"] for r in rows}
    assert "invoiceNum is a number" in by_id["exp-inv-number"]
    assert "invoiceNum is empty" in by_id["exp-inv-empty"]
    assert "limit is 409,600" in by_id["exp-big"]
    gate = checks()["analysis_clean"]
    result = gate.evaluate(actx, gate.params.model_validate({"step": "analyze-data-volume"}))
    assert result.ok and "3 the target cannot hold" in result.detail
    assert "quarantine.jsonl" in result.detail

    mctx, _ = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    sent = record_puts(ddb)
    refused = refuse_item(ddb, "expenseId", UNFORESEEN, "Item size has exceeded the maximum")
    params = {"entity": "expenses", "segments": 2, "write_path": write_path}
    m = run(mctx, "migrate_entity", params)
    assert m["scanned"] == m["source_total"] == 64
    assert m["migrated"] == 60 and m["quarantined"] == 4 and m["rejected_by_target"] == 4
    assert not UNFIT & set(sent)  # checked before any write
    # rejected by the table, then set aside; a refused transaction is retried item by item
    assert sent.count(UNFORESEEN) == (1 if write_path == "put" else 2)
    assert refused == (["PutItem"] if write_path == "put" else ["TransactWriteItems", "PutItem"])
    q = [json.loads(x) for x in mctx.artifact("quarantine-expenses.jsonl").read_text().splitlines()]
    reasons = {r["key"]["expenseId"]: r["reason"] for r in q}
    assert set(reasons) == REJECTED
    assert reasons[UNFORESEEN].startswith("target rejected the write: ")
    assert q[0]["item"]  # the legacy item itself is kept
    landed = {i["expenseId"] for p, _ in dynamo.scan_pages(ddb, T_EXPENSES) for i in p}
    assert len(landed) == 60 and not landed & REJECTED

    # a crash after the rejected write, before the page's cursor moved: the resume re-runs the
    # pages but never sends the rejected item again
    state = mctx.journal.step("migrate-expenses")
    state.cursors["segments"] = {"0": {"done": False}, "1": {"done": False}}
    state.cursors["counts"] = {"scanned": 0, "migrated": 0, "skipped_newer": 0}
    sent.clear()
    rctx, _ = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    m2 = run(rctx, "migrate_entity", params)
    assert UNFORESEEN not in sent and len(sent) == 60, (m2, len(sent), sorted(sent)[:5])
    assert m2["quarantined"] == 4 and m2["migrated"] == 60
    assert rctx.artifact(ledger_name("expenses")).exists()

    vctx, _ = make_ctx("validate-migration", aws, journal=ctx.journal)
    v = run(vctx, "validate_migration", {"entities": ["expenses"]})
    assert v["records_missing"] == 0 and v["issues"]["quarantined"] == 4
    assert v["recordCounts"]["expenses"] == {
        "source": 64,
        "target": 60,
        "not_migrated": 4,
        "match": True,
    }
    problems = vctx.artifact(v["artifact"]).read_text()
    assert UNFORESEEN in problems and "target rejected the write" in problems


def test_resync_sends_each_legacy_key_once_per_batch(aws, make_ctx, runbook):
    """One user's expense in two companies (an override moved the user): both company items
    map back to one legacy key; BatchWriteItem would reject the batch, so the latest wins."""
    ddb = aws.client("dynamodb")
    for spec in runbook.inventory.tables:
        create_table(ddb, spec)
    res = aws.resource("dynamodb")
    with res.Table(T_EXPENSES).batch_writer() as w:
        for company, updated, amount in (
            ("comp-a", "2025-01-02T00:00:00Z", 2),
            ("comp-b", "2025-01-01T00:00:00Z", 1),
        ):
            w.put_item(
                Item={
                    "companyId": company,
                    "expenseId": "exp-1",
                    "amount": amount,
                    "date": "2024",
                    "createdBy": "user-01",
                    "createdAt": "2024-01-01T00:00:00Z",
                    "updatedAt": updated,
                }
            )
        w.put_item(
            Item={
                "companyId": "comp-a",
                "expenseId": "exp-2",
                "amount": 5,
                "date": "2024",
                "createdBy": "user-01",
                "createdAt": "2024-01-01T00:00:00Z",
                "updatedAt": MIGRATION_TS,
            }
        )
    batches: list[list[str]] = []

    def note(params: dict[str, Any], **_: Any) -> None:
        for reqs in params["RequestItems"].values():
            batches.append([r["PutRequest"]["Item"]["expenseId"]["S"] for r in reqs])

    ddb.meta.events.register("provide-client-params.dynamodb.BatchWriteItem", note)
    sctx, _ = make_ctx("rollback-cleanup#3", aws)
    s = run(sctx, "resync_legacy", {"entities": ["expenses"]})
    assert s["duplicate_keys"] == 1 and s["resynced"] == 2
    assert batches and all(len(b) == len(set(b)) for b in batches)
    legacy = {i["expenseId"]: i for p, _ in dynamo.scan_pages(ddb, EXPENSES) for i in p}
    assert set(legacy) == {"exp-1", "exp-2"} and legacy["exp-1"]["amount"] == 2
