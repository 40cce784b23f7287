"""Issue 21: the embedded server with provisioned capacity (`--capacity-counts`, a world shape's
`provisioned_write_units`) throttles writes to a PROVISIONED table as DynamoDB does when its
WCU run out, leaves on-demand tables alone, and counts per table and caller in its file."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from engine.rehearsal.provisioned import read_counts

ITEM_KB = 3  # 3 WCU a put: a bucket of 10 passes four in a row (the fourth overdraws it)


def until(condition, seconds: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


@pytest.fixture
def metered(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    counts = tmp_path / "world.capacity.json"
    server = ["-m", "engine.rehearsal.moto_process", "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, *server, "--capacity-counts", str(counts)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        until(lambda: counts.exists(), 30, "the server to start")
        until(lambda: _accepts(port), 30, "the server to listen")
        yield f"http://127.0.0.1:{port}", counts
    finally:
        proc.terminate()
        proc.wait(10)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def client(url: str, caller: str):
    return boto3.client(
        "dynamodb",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=caller,
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),  # see every throttle
    )


def make_table(ddb, name: str, wcu: int | None) -> None:
    mode = (
        {"BillingMode": "PROVISIONED", "ProvisionedThroughput": {
            "ReadCapacityUnits": 10, "WriteCapacityUnits": wcu}}
        if wcu
        else {"BillingMode": "PAY_PER_REQUEST"}
    )  # fmt: skip
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        **mode,
    )


def item(n: int) -> dict:
    return {"k": {"S": f"i-{n:04d}"}, "pad": {"S": "x" * (ITEM_KB * 1024 - 100)}}


def puts(ddb, table: str, n: int) -> tuple[int, int]:
    """(passed, throttled) of n puts in a row."""
    passed = throttled = 0
    for i in range(n):
        try:
            ddb.put_item(TableName=table, Item=item(i))
            passed += 1
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
            assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 400
            throttled += 1
    return passed, throttled


def test_writes_beyond_a_provisioned_tables_capacity_are_throttled_and_counted(metered) -> None:
    url, counts = metered
    app, engine = client(url, "application"), client(url, "testing")
    make_table(engine, "prov", 10)
    make_table(engine, "free", None)

    passed, throttled = puts(app, "prov", 10)
    # 10 WCU of burst: four 3-WCU puts (the fourth overdraws), then none until it is paid back
    assert passed <= 5 and throttled >= 5
    assert puts(app, "free", 10) == (10, 0)  # on-demand: never throttled here

    make_table(engine, "tiny", 1)  # 1 WCU: a 3-WCU put leaves it 2 s in debt
    assert puts(engine, "tiny", 1) == (1, 0)
    with pytest.raises(ClientError) as cancelled:
        engine.transact_write_items(
            TransactItems=[{"Put": {"TableName": "tiny", "Item": {"k": {"S": f"t{n}"}}}}
                           for n in range(2)]
        )  # fmt: skip
    error = cancelled.value.response
    assert error["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in error["CancellationReasons"]] == ["ThrottlingError"] * 2
    with pytest.raises(ClientError) as batch:  # the whole batch
        engine.batch_write_item(
            RequestItems={"tiny": [{"PutRequest": {"Item": {"k": {"S": f"b{n}"}}}}
                                   for n in range(3)]}
        )  # fmt: skip
    assert batch.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert engine.scan(TableName="tiny", Select="COUNT")["Count"] == 1  # nothing else landed
    assert engine.scan(TableName="prov", Select="COUNT")["Count"] == passed

    # the capacity follows UpdateTable: at 1,000 WCU the same puts pass
    engine.update_table(
        TableName="prov",
        ProvisionedThroughput={"ReadCapacityUnits": 10, "WriteCapacityUnits": 1000},
    )
    tries: list[tuple[int, int]] = []
    until(lambda: tries.append(puts(app, "prov", 1)) or tries[-1] == (1, 0), 5, "a put to pass")
    assert puts(app, "prov", 10) == (10, 0)
    # what passes says what it consumed, as DynamoDB's answers do (the engine's budget reads it)
    said = app.put_item(TableName="prov", Item=item(99), ReturnConsumedCapacity="TOTAL")
    assert said["ConsumedCapacity"] == {"TableName": "prov", "CapacityUnits": ITEM_KB}
    said = engine.transact_write_items(
        TransactItems=[{"Put": {"TableName": "prov", "Item": {"k": {"S": f"t{n}"}}}}
                       for n in range(2)],
        ReturnConsumedCapacity="TOTAL",
    )  # fmt: skip
    assert said["ConsumedCapacity"] == [{"TableName": "prov", "CapacityUnits": 4.0}]

    made = 10 + 10 + len(tries) + 10 + 1  # the application's requests, throttled or not
    late = sum(t for _, t in tries)
    seen = until(lambda: _counted(counts, made), 5, "the counts file to catch up")
    table = seen["tables"]["prov"]["callers"]
    assert table["application"]["requests"] == made - 10  # the on-demand ones are not metered
    assert table["application"]["throttled"] == throttled + late
    assert table["application"]["units"] == (passed + 1 + 10 + 1) * ITEM_KB
    assert (table["testing"]["requests"], table["testing"]["throttled"]) == (1, 0)
    assert table["testing"]["units"] == 4
    tiny = seen["tables"]["tiny"]["callers"]["testing"]
    assert (tiny["requests"], tiny["throttled"], tiny["units"]) == (3, 2, ITEM_KB)
    assert seen["tables"]["prov"]["write_units"] == 1000
    assert "free" not in seen["tables"]
    assert seen["burst_seconds"] == 1.0


def _counted(path: Path, made: int) -> dict | None:
    counts = read_counts(path)
    app = (counts or {}).get("tables", {}).get("prov", {}).get("callers", {}).get("application")
    return counts if app and app["requests"] == made - 10 else None
