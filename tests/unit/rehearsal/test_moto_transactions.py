"""The embedded world's TransactWriteItems (engine/moto_fidelity.aws_transactions): all or
nothing, isolated from concurrent writes, the cancellation reasons AWS gives, and a cost that
does not grow with the table."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from engine.rehearsal.moto_fidelity import aws_item_size_limit, aws_transactions

TABLE = "t"


@pytest.fixture
def ddb(aws: Any) -> Any:
    assert aws_transactions() and aws_item_size_limit()  # as conftest, and the embedded server
    client = aws.client("dynamodb")
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


def put(pk: str, **extra: Any) -> dict[str, Any]:
    item = {"pk": {"S": pk}, **{k: {"S": v} for k, v in extra.items()}}
    return {
        "Put": {
            "TableName": TABLE,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(pk)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def keys(ddb: Any) -> list[str]:
    return sorted(i["pk"]["S"] for i in ddb.scan(TableName=TABLE)["Items"])


def test_a_failed_condition_cancels_all_and_returns_the_item_in_the_way(ddb):
    ddb.put_item(TableName=TABLE, Item={"pk": {"S": "b"}, "owner": {"S": "app"}})
    with pytest.raises(ClientError) as err:
        ddb.transact_write_items(TransactItems=[put("a"), put("b"), put("c")])
    assert err.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = err.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed", "None"]
    assert reasons[1]["Item"]["owner"] == {"S": "app"}
    assert keys(ddb) == ["b"]  # nothing of the transaction was written
    ddb.transact_write_items(TransactItems=[put("a"), put("c")])
    assert keys(ddb) == ["a", "b", "c"]


def test_a_refused_put_undoes_the_ones_before_it(ddb):
    too_big = put("z", blob="x" * (401 * 1024))
    with pytest.raises(ClientError):
        ddb.transact_write_items(TransactItems=[put("a"), put("b"), too_big])
    assert keys(ddb) == []


def test_one_key_twice_is_refused(ddb):
    with pytest.raises(ClientError) as err:
        ddb.transact_write_items(TransactItems=[put("a"), put("a", v="2")])
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert keys(ddb) == []


def test_concurrent_puts_and_transactions_all_land(ddb):
    errors: list[BaseException] = []

    def writer(prefix: str, transactional: bool) -> None:
        try:
            for n in range(20):
                if transactional:
                    batch = [put(f"{prefix}{n}-{k}") for k in range(10)]
                    ddb.transact_write_items(TransactItems=batch)
                else:
                    ddb.put_item(TableName=TABLE, Item={"pk": {"S": f"{prefix}{n}"}})
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"t{n}-", n % 2 == 0)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(keys(ddb)) == 3 * 20 * 10 + 3 * 20


def test_a_transaction_costs_the_same_on_a_large_table(ddb):
    def seconds_per_transaction(prefix: str) -> float:
        t0 = time.perf_counter()
        for n in range(5):
            ddb.transact_write_items(TransactItems=[put(f"{prefix}{n}-{k}") for k in range(100)])
        return (time.perf_counter() - t0) / 5

    small = seconds_per_transaction("s")
    for start in range(0, 5_000, 25):
        ddb.batch_write_item(
            RequestItems={
                TABLE: [
                    {"PutRequest": {"Item": {"pk": {"S": f"f{n}"}}}}
                    for n in range(start, start + 25)
                ]
            }
        )
    large = seconds_per_transaction("l")
    # moto's own path deep-copies the table: ten times the items, about ten times the time
    assert large < small * 3
