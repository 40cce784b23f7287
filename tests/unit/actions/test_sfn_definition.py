"""The step-functions backend's state machine, generated from the runbook (pure; issue 23):
its shape, the local path's condition, the refusals, and the names AWS accepts. What it does
against moto: tests/integration/test_migrate_step_functions.py."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import ValidationError

from engine.actions.migrate import write
from engine.actions.migrate.params import MigrateParams
from engine.actions.migrate.sfn_definition import convert_state, definition
from engine.actions.migrate.sfn_items import index_keys, item_states
from engine.actions.migrate.sfn_spec import (
    MAX_KNOWN_COLLISIONS,
    NAME_LIMIT,
    CopySpec,
    aws_name,
    refusal,
    user_object,
)
from engine.aws.target_fit import shape_from_description
from engine.runbook.model import EntitySpec

EXPENSES = EntitySpec(
    name="expenses",
    source="legacy-expenses",
    target="company-expenses",
    id_attr="expenseId",
    required={"expenseId": "string", "amount": "number", "date": "string"},
)
TARGET = {
    "TableName": "company-expenses",
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
        {"IndexName": "inv", "KeySchema": [{"AttributeName": "invoiceNum", "KeyType": "HASH"}]},
        {"IndexName": "amt", "KeySchema": [{"AttributeName": "amountKey", "KeyType": "HASH"}]},
    ],
}


def spec(**changes: Any) -> CopySpec:
    base: dict[str, Any] = {
        "entity": EXPENSES,
        "source_keys": ("userId", "expenseId"),
        "target_keys": ("companyId", "expenseId"),
        "shape": shape_from_description(TARGET),
        "migration_ts": "2026-12-06T10:00:00Z",
        "bucket": "exports",
        "reader_prefix": "rb/run/step/reader/",
        "files_prefix": "rb/run/step/reader/",
        "mapping_prefix": "rb/run/step/mapping/",
        "outcomes_prefix": "rb/run/step/outcomes/",
        "results_prefix": "rb/run/step/results",
    }
    return CopySpec(**{**base, **changes})


def walk(states: dict[str, Any]) -> set[str]:
    """Every state reachable from StartAt... checked by the caller; here: every target named."""
    targets: set[str] = set()
    for state in states.values():
        targets.update(filter(None, [state.get("Next"), state.get("Default")]))
        for rule in state.get("Choices", []):
            targets.add(rule["Next"])
        for catch in state.get("Catch", []):
            targets.add(catch["Next"])
    return targets


def test_a_map_of_the_files_each_a_map_of_its_items_tolerating_no_failure() -> None:
    asl = definition(spec())
    files = asl["States"][asl["StartAt"]]
    assert asl["StartAt"] == "Files" and files["Label"] == "Files"
    assert files["Type"] == "Map" and files["End"] is True
    assert files["ToleratedFailureCount"] == 0
    # the data files, listed; a child per file, STANDARD (a Distributed Map runs only there)
    assert files["ItemReader"] == {
        "Resource": "arn:aws:states:::s3:listObjectsV2",
        "Parameters": {"Bucket": "exports", "Prefix": "rb/run/step/reader/"},
    }
    assert files["ItemSelector"] == {"Key.$": "$$.Map.Item.Value.Key"}
    assert files["MaxConcurrency"] == 10
    assert files["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED",
        "ExecutionType": "STANDARD",
    }
    # a rehearsal's files are converted already: no Convert state
    assert files["ItemProcessor"]["StartAt"] == "Items"
    assert set(files["ItemProcessor"]["States"]) == {"Items"}
    copy = files["ItemProcessor"]["States"]["Items"]
    assert copy["Type"] == "Map" and copy["Label"] == "Items" and copy["End"] is True
    assert copy["ToleratedFailureCount"] == 0
    assert copy["ItemReader"]["ReaderConfig"] == {"InputType": "JSON"}
    assert copy["ItemReader"]["Parameters"] == {"Bucket": "exports", "Key.$": "$.Key"}
    assert copy["ResultWriter"]["Parameters"]["Prefix"] == "rb/run/step/results"
    assert files["ResultWriter"]["Parameters"]["Prefix"] == "rb/run/step/results/files"
    assert copy["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED",
        "ExecutionType": "EXPRESS",
    }
    assert copy["MaxConcurrency"] == 100  # 1,000 children in all, shared by 10 files
    # one item per child in the batch's shape (moto parses no ItemBatcher)
    assert copy["ItemSelector"] == {"Items.$": "States.Array($$.Map.Item.Value)"}
    assert "ItemBatcher" not in copy
    batched = definition(
        spec(batch_size=50, max_concurrency=40, child_type="STANDARD", files_in_flight=3)
    )
    bfiles = batched["States"]["Files"]
    bcopy = bfiles["ItemProcessor"]["States"]["Items"]
    assert bcopy["ItemBatcher"] == {"MaxItemsPerBatch": 50} and "ItemSelector" not in bcopy
    assert (bfiles["MaxConcurrency"], bcopy["MaxConcurrency"]) == (3, 13)
    assert bcopy["ItemProcessor"]["ProcessorConfig"]["ExecutionType"] == "STANDARD"
    few = definition(spec(max_concurrency=4, files_in_flight=10))["States"]["Files"]
    assert few["ItemProcessor"]["States"]["Items"]["MaxConcurrency"] == 1  # never 0
    assert len(json.dumps(asl)) < 1_000_000  # the definition quota (1 MB)


def test_on_a_real_account_each_file_is_converted_by_the_bridge_first() -> None:
    fn = "arn:aws:lambda:us-east-1:123456789012:function:runbook-bridge-rb-expenses"
    data = "rb/run/step/export/AWSDynamoDB/0123-abcd/data/"
    asl = definition(spec(files_prefix=data, bridge_function=fn))
    files = asl["States"]["Files"]
    assert files["ItemReader"]["Parameters"] == {"Bucket": "exports", "Prefix": data}
    child = files["ItemProcessor"]
    assert child["StartAt"] == "Convert"
    convert = child["States"]["Convert"]
    assert convert == convert_state(spec(), fn)
    assert convert["Resource"] == "arn:aws:states:::lambda:invoke"
    assert convert["Parameters"] == {
        "FunctionName": fn,
        "Payload": {
            "Bucket": "exports",
            "Key.$": "$.Key",
            "ReaderBucket": "exports",
            "ReaderPrefix": "rb/run/step/reader/",
        },
    }
    # the function's answer {"Bucket", "Key", "items"} becomes the file's map input {"Key"}
    assert convert["ResultSelector"] == {"Key.$": "$.Payload.Key"}
    assert convert["ResultPath"] == "$" and convert["Next"] == "Items"
    assert {"Lambda.TooManyRequestsException", "Lambda.ServiceException"} <= set(
        convert["Retry"][0]["ErrorEquals"]
    )
    assert child["States"]["Items"]["ItemReader"]["Parameters"]["Key.$"] == "$.Key"


def test_every_state_it_names_exists_and_every_state_is_reached() -> None:
    for known in ((), ("comp-a#dup-1",)):
        states = item_states(spec(known_collisions=known))["States"]
        named = walk(states)
        assert named <= set(states)
        ends = {n for n, s in states.items() if s.get("End") or s["Type"] == "Fail"}
        assert set(states) - {"Start"} <= named | ends
        assert {"Migrated", "Record", "Vanish"} <= ends


def test_the_write_is_the_local_paths_condition() -> None:
    states = item_states(spec())["States"]
    put = states["Put"]
    assert put["Resource"] == "arn:aws:states:::dynamodb:putItem"
    params = put["Parameters"]
    assert params["ConditionExpression"] == write.WRITE_CONDITION
    assert params["ExpressionAttributeNames"] == {
        "#pk": "companyId",
        "#upd": "updatedAt",
        "#cb": "createdBy",
    }
    assert params["ExpressionAttributeValues"][":ts"] == {"S": "2026-12-06T10:00:00Z"}
    catches = {c["ErrorEquals"][0]: c["Next"] for c in put["Catch"]}
    assert catches["DynamoDB.ConditionalCheckFailedException"] == "ReadBack"
    assert catches["DynamoDB.ValidationException"] == "Rejected"
    # the legacy user attribute goes, only from an item still this run's
    drop = states["DropUser"]["Parameters"]
    assert drop["UpdateExpression"] == "REMOVE #u" and drop["ExpressionAttributeNames"]["#u"] == (
        "userId"
    )
    assert drop["ConditionExpression"] == "#upd = :ts AND #cb = :user"
    # settled as the local path settles a failed condition
    settle = states["Settle"]["Choices"]
    assert [rule["Next"] for rule in settle] == ["Again", "Owned", "Owned", "Unreadable", "Skipped"]
    assert settle[-1]["StringGreaterThan"] == "2026-12-06T10:00:00Z"


def test_classify_follows_classify_legacy_then_the_index_keys() -> None:
    states = item_states(spec())["States"]
    rules = states["Classify"]["Choices"]
    variables = [
        (r.get("Not", r).get("Variable"), "Not" in r) for r in rules if r["Next"] == "Quarantine"
    ]
    assert variables[:4] == [
        ("$.Item.userId.S", True),
        ("$.Item.userId.S", False),
        ("$.Item.expenseId.S", True),
        ("$.Item.expenseId.S", False),
    ]
    assert ("$.Item.amount.N", True) in variables and ("$.Item.date.S", True) in variables
    assert index_keys(spec()) == [("invoiceNum", "S"), ("amountKey", "N")]
    assert states["Classify"]["Default"] == "Keys0"
    assert states["Keys0"]["Choices"][0] == {
        "Not": {"Variable": "$.Item.invoiceNum", "IsPresent": True},
        "Next": "Keys1",
    }
    assert states["Keys1"]["Default"] == "Lookup"
    # the company comes from the mapping object of the user's hash
    assert "States.Hash($.Item.userId.S, 'SHA-256')" in states["Lookup"]["Parameters"]["Key.$"]
    assert user_object("p/", "u-1") == "p/" + __import__("hashlib").sha256(b"u-1").hexdigest()


def test_known_collisions_ride_in_the_definition() -> None:
    states = item_states(spec(known_collisions=("comp-a#dup-1",)))["States"]
    assert states["Build"]["Next"] == "Known"
    assert states["Build"]["Parameters"]["known"] == ["comp-a#dup-1"]
    assert states["IsKnown"]["Choices"][0]["Next"] == "KnownCollision"
    assert item_states(spec())["States"]["Build"]["Next"] == "Put"


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"entity": EXPENSES.model_copy(update={"id_attr": "expense-id"})}, "expense-id"),
        ({"source_keys": ("user.id", "expenseId")}, "user.id"),
        ({"target_keys": ("tenant", "expenseId")}, "keys are"),
        ({"mapping_prefix": "a b/"}, "S3 prefix"),
        ({"known_collisions": ("c#x",) * (MAX_KNOWN_COLLISIONS + 1)}, "known collisions"),
    ],
)
def test_what_jsonpath_cannot_express_is_refused_in_one_line(changes, words) -> None:
    why = refusal(spec(**changes))
    assert why is not None and words in why and "\n" not in why
    with pytest.raises(ValueError, match=re.escape(why)):
        definition(spec(**changes))
    assert refusal(spec()) is None


def test_names_fit_step_functions_and_iam() -> None:
    assert aws_name(["migrate-expenses", "20261206T100000Z"]) == "migrate-expenses-20261206T100000Z"
    odd = aws_name(["runbook", "my runbook:v2", "step/1"])
    assert re.fullmatch(r"[A-Za-z0-9_-]+", odd)
    long_a = aws_name(["x" * 80, "step-a"])
    long_b = aws_name(["x" * 80, "step-b"])
    assert len(long_a) == len(long_b) == NAME_LIMIT and long_a != long_b
    assert aws_name(["x" * 80, "step-a"]) == long_a  # the same on every resume
    assert len(aws_name(["r" * 100], 64)) == 64


def test_params_choose_the_backend() -> None:
    assert MigrateParams(entity="expenses").backend == "local"
    sfn = MigrateParams(entity="expenses", backend="step-functions", bucket="exports")
    assert (sfn.batch_size, sfn.max_concurrency, sfn.child_type) == (1, 1000, "EXPRESS")
    with pytest.raises(ValidationError, match="needs `bucket`"):
        MigrateParams(entity="expenses", backend="step-functions")
    with pytest.raises(ValidationError, match="only for backend"):
        MigrateParams(entity="expenses", bucket="exports")
    with pytest.raises(ValidationError):
        MigrateParams(entity="expenses", backend="step-functions", bucket="x", max_concurrency=0)
