"""moto's Scan pages as AWS's cost (engine.rehearsal.moto_fidelity.aws_scan_pages): the sorted
order is kept between pages, and every write that changes it is seen by the next page."""

from __future__ import annotations

from typing import Any

import pytest
from moto.backends import get_backend

from engine.aws import dynamo
from engine.rehearsal.moto_fidelity import aws_scan_pages

TABLE = "scan-t"


@pytest.fixture
def ddb(aws: Any) -> Any:
    assert aws_scan_pages()
    client = aws.client("dynamodb")
    client.create_table(
        TableName=TABLE,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    with aws.resource("dynamodb").Table(TABLE).batch_writer() as w:
        for n in range(300):
            w.put_item(Item={"pk": f"p{n % 37}", "sk": f"s{n:04d}", "v": n})
    return client


def moto_table() -> Any:
    return get_backend("dynamodb")["123456789012"]["us-east-1"].get_table(TABLE)


def scan_all(ddb: Any, segments: int = 3, limit: int = 40) -> dict[tuple[str, str], Any]:
    seen: dict[tuple[str, str], Any] = {}
    for segment in range(segments):
        pages = dynamo.scan_pages(ddb, TABLE, Segment=segment, TotalSegments=segments, Limit=limit)
        for page, _ in pages:
            for item in page:
                key = (item["pk"], item["sk"])
                assert key not in seen  # each item once, across segments and pages
                seen[key] = item.get("v")
    return seen


def test_pages_share_one_sort_and_see_every_write(ddb: Any) -> None:
    first = scan_all(ddb)
    assert len(first) == 300
    order = moto_table()._runbook_order
    assert scan_all(ddb) == first
    assert moto_table()._runbook_order is order  # no write: the sort was kept for every page

    ddb.put_item(TableName=TABLE, Item={"pk": {"S": "new"}, "sk": {"S": "x"}, "v": {"N": "1"}})
    assert scan_all(ddb)[("new", "x")] == 1  # each write seen by the very next scan
    assert moto_table()._runbook_order is not order
    ddb.put_item(TableName=TABLE, Item={"pk": {"S": "p1"}, "sk": {"S": "s0001"}, "v": {"N": "-1"}})
    assert scan_all(ddb)[("p1", "s0001")] == -1  # replaced: a new item object, same key
    ddb.delete_item(TableName=TABLE, Key={"pk": {"S": "p2"}, "sk": {"S": "s0002"}})
    assert ("p2", "s0002") not in scan_all(ddb)
    ddb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": "p3"}, "sk": {"S": "s0003"}},
        UpdateExpression="SET v = :v",
        ExpressionAttributeValues={":v": {"N": "-3"}},
    )
    assert scan_all(ddb)[("p3", "s0003")] == -3  # in place
    ddb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": "up"}, "sk": {"S": "z"}},
        UpdateExpression="SET v = :v",
        ExpressionAttributeValues={":v": {"N": "7"}},
    )
    assert scan_all(ddb)[("up", "z")] == 7  # an update that creates the item
    ddb.transact_write_items(
        TransactItems=[{"Put": {"TableName": TABLE, "Item": {"pk": {"S": "tx"}, "sk": {"S": "y"}}}}]
    )
    after = scan_all(ddb)
    assert ("tx", "y") in after and len(after) == 300 + 3 - 1
