"""The bench's capacity model (bench/capacity_model.py): token buckets per table and per
partition key, answering a real botocore client as DynamoDB does when they run dry. The model
answers before anything is sent, so no server is needed; time is stepped by the test."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from bench.capacity_model import CapacityModel

TABLE = "target"


class Tick:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def client():
    return boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",  # never reached: the model answers first
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def item(company: str, n: int) -> dict:
    return {"companyId": {"S": company}, "sk": {"S": f"exp-{n}"}}


def test_a_put_is_answered_with_its_consumed_capacity_until_the_table_runs_dry(client):
    now = Tick()
    model = CapacityModel(TABLE, write_units=3, partition_units=10, now=now)
    model.attach(client, "app")
    for n in range(3):
        got = client.put_item(TableName=TABLE, Item=item("a", n), ReturnConsumedCapacity="TOTAL")
        assert got["ConsumedCapacity"] == {"TableName": TABLE, "CapacityUnits": 1.0}
    with pytest.raises(ClientError) as err:
        client.put_item(TableName=TABLE, Item=item("a", 9))
    assert err.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    now.t += 1  # a second's units again
    client.put_item(TableName=TABLE, Item=item("a", 10))
    assert model.counts["app"].requests == 5 and model.counts["app"].throttled == 1


def test_a_transaction_is_all_or_nothing_and_names_the_dry_partition(client):
    now = Tick()
    model = CapacityModel(TABLE, write_units=100, partition_units=4, now=now)
    model.attach(client, "migration")
    puts = [{"Put": {"TableName": TABLE, "Item": item(c, n)}} for n, c in enumerate("aab")]
    got = client.transact_write_items(TransactItems=puts, ReturnConsumedCapacity="TOTAL")
    assert got["ConsumedCapacity"] == [{"TableName": TABLE, "CapacityUnits": 6.0}]  # 2 each
    with pytest.raises(ClientError) as err:  # company a has no 4 units left this second
        client.transact_write_items(TransactItems=puts)
    assert err.value.response["Error"]["Code"] == "TransactionCanceledException"
    codes = [r["Code"] for r in err.value.response["CancellationReasons"]]
    assert codes == ["ThrottlingError", "ThrottlingError", "None"]
    assert model.company_units["a"][0] == 4 and model.company_units["b"][0] == 2


def test_writes_to_other_tables_go_on_to_the_server(client):
    model = CapacityModel(TABLE, write_units=1, partition_units=1, now=Tick())
    request = type("R", (), {"headers": {"X-Amz-Target": b"DynamoDB_20120810.Scan"}})()
    assert model.answer("app", request) is None


def test_halving_the_capacity_applies_at_once(client):
    now = Tick()
    model = CapacityModel(TABLE, write_units=10, partition_units=100, now=now)
    model.set_capacity(2)
    model.attach(client, "app")
    client.put_item(TableName=TABLE, Item=item("a", 1))
    client.put_item(TableName=TABLE, Item=item("a", 2))
    with pytest.raises(ClientError):
        client.put_item(TableName=TABLE, Item=item("a", 3))
