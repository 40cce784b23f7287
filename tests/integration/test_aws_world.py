"""The real-shaped rehearsal world (engine/rehearsal/seed.py WorldShape), moto's item size limit."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from engine.aws import dynamo
from engine.aws.target import DUMMY_CREDENTIALS, Connection
from engine.rehearsal.moto_fidelity import AWS_ITEM_LIMIT_BYTES, aws_item_size_limit
from engine.rehearsal.seed import WorldShape, item_size, seed_world
from engine.runbook.transforms import to_company_scoped
from tests.support.worlds import prod_api

LEGACY = "construction-expenses-multi-table-expenses"
COMPANY = "construction-expenses-company-expenses"


@pytest.fixture
def real_world(runbook):
    with mock_aws():
        assert aws_item_size_limit()  # as the embedded server does at start
        session = boto3.Session(region_name="us-east-1", **DUMMY_CREDENTIALS)
        conn = Connection(session, "us-east-1")
        seed_world(conn, runbook, "world-real", shape=WorldShape.real_shaped())
        yield conn


def test_real_shaped_world(real_world, runbook):
    ddb = real_world.client("dynamodb")
    items = {i["expenseId"]["S"]: dynamo.to_python(i) for i in ddb.scan(TableName=LEGACY)["Items"]}
    assert len(items) == 7  # the plan's count: the odd items replace, never add
    assert items["exp-000000"]["invoiceNum"] == 1000  # a number where the GSI says S
    assert items["exp-000001"]["invoiceNum"] == ""
    assert all(
        isinstance(i["invoiceNum"], str) and i["invoiceNum"]
        for k, i in items.items()
        if k not in ("exp-000000", "exp-000001")
    )
    gsi = ddb.describe_table(TableName=COMPANY)["Table"]["AttributeDefinitions"]
    assert {"AttributeName": "invoiceNum", "AttributeType": "S"} in gsi

    big = items["exp-000002"]
    scoped = to_company_scoped(runbook.entity("expenses"), big, "comp-acme", "2024-12-01T10:00:00Z")
    assert item_size(big) <= AWS_ITEM_LIMIT_BYTES < item_size(scoped)
    with pytest.raises(ClientError, match="size"):  # as AWS: the scoped item does not fit
        ddb.put_item(TableName=COMPANY, Item=dynamo.to_dynamo(scoped))
    others = [k for k, i in items.items() if k != "exp-000002" and item_size(i) > 100_000]
    assert others == []  # one oversize item in the world

    lam = real_world.client("lambda")
    gw = real_world.client("apigateway")
    api = prod_api(real_world)
    for fn in runbook.inventory.select_functions("@group:company"):
        assert lam.get_alias(FunctionName=fn, Name="live")["FunctionVersion"] == "1"
    res = next(r for r in gw.get_resources(restApiId=api)["items"] if r["path"] == "/company/works")
    uri = gw.get_integration(restApiId=api, resourceId=res["id"], httpMethod="GET")["uri"]
    assert uri.endswith("function:construction-expenses-company-works:live/invocations")
    res = next(r for r in gw.get_resources(restApiId=api)["items"] if r["path"] == "/works")
    uri = gw.get_integration(restApiId=api, resourceId=res["id"], httpMethod="GET")["uri"]
    assert uri.endswith("function:construction-expenses-multi-table-get-works/invocations")


def test_world_shape_from_the_runbook():
    assert WorldShape.from_config({}) == WorldShape()
    assert WorldShape.from_config({"real_shaped": True}) == WorldShape.real_shaped()
    assert WorldShape.from_config({"alias": "live", "alias_groups": ["company"]}).alias == "live"
    with pytest.raises(ValueError, match="unknown keys colour"):
        WorldShape.from_config({"colour": "blue"})
