"""moto is pinned (requirements.lock), and an upgrade that changes what the fidelity patches
rely on fails here, one line naming the moto version and the function
(engine/rehearsal/moto_contract.py), never as a wrong rehearsal."""

from __future__ import annotations

import subprocess
import sys

import pytest
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

from engine.rehearsal.moto_contract import (
    RELIED,
    RELIED_SFN,
    MotoChanged,
    check_moto,
    moto_version,
    problem_with,
)
from engine.rehearsal.moto_fidelity import AWS_ITEM_LIMIT_BYTES, aws_item_size, aws_item_size_limit


@pytest.mark.parametrize("relied", RELIED + RELIED_SFN, ids=lambda r: r.path)
def test_moto_still_fits_the_patch(relied) -> None:
    assert problem_with(relied) is None


def moto_525_size(self: DynamoType) -> int:
    """DynamoType.size as moto 5.2.5 had it: a number counted as its digits."""
    if self.is_number():
        return len(str(self.value))
    return len(self.value.encode()) if isinstance(self.value, str) else 1


def test_the_previous_moto_number_count_fails_in_one_named_line(monkeypatch) -> None:
    monkeypatch.setattr(DynamoType, "size", moto_525_size)
    with pytest.raises(MotoChanged) as raised:
        check_moto()
    lines = str(raised.value).splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        f"moto {moto_version()}: moto.dynamodb.models.dynamo_type.DynamoType.size: numbers"
    )


def test_a_changed_signature_is_named(monkeypatch) -> None:
    def scan(self, filters, limit, exclusive_start_key, new_flag=False):  # a future moto
        raise AssertionError("not called")

    monkeypatch.setattr(Table, "scan", scan)
    [problem] = [p for p in (problem_with(r) for r in RELIED) if p]
    assert "moto.dynamodb.models.table.Table.scan: parameters (self, filters, limit, " in problem
    assert "new_flag" in problem


def test_the_embedded_server_refuses_a_moto_that_changed(tmp_path) -> None:
    plant = tmp_path / "sitecustomize.py"  # runs before the server's own code
    plant.write_text(
        "from moto.dynamodb.models.dynamo_type import DynamoType\n"
        "DynamoType.size = lambda self: len(str(self.value))\n"
    )
    env = {"PYTHONPATH": f"{tmp_path}:.", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "engine.rehearsal.moto_process", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    assert "DynamoType.size: numbers are not counted" in done.stderr


def test_items_are_refused_where_dynamodb_refuses_them(aws) -> None:
    assert aws_item_size_limit()  # as conftest and the embedded server
    ddb = aws.client("dynamodb")
    ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    readings = [{"N": "1"}] * 1000  # 3 + 1000 * (1 + 2) bytes by DynamoDB's count
    base = {"k": {"S": "a"}, "r": {"L": readings}}
    fixed = 1 + 1 + 1 + (3 + 1000 * 3) + 1  # names k, r, b; values "a", the list
    at_limit = {**base, "b": {"S": "x" * (AWS_ITEM_LIMIT_BYTES - fixed)}}
    assert aws_item_size(DynamoType(at_limit["r"])) == 3003
    ddb.put_item(TableName="t", Item=at_limit)
    over = {**base, "b": {"S": "x" * (AWS_ITEM_LIMIT_BYTES - fixed + 1)}}
    with pytest.raises(ddb.exceptions.ClientError, match="Item size has exceeded"):
        ddb.put_item(TableName="t", Item=over)
