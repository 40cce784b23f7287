"""The rehearsal's side of the bridge (engine/rehearsal/export_bridge.py): every data file of
an AWS-shaped export converted here, one reader file each, with the function's own code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from engine.aws.export_reader import reader_key_for
from engine.core.world import REAL_ACCOUNT
from engine.rehearsal.export_bridge import bridge_export, export_data_keys
from engine.rehearsal.world import EMBEDDED, STAND_IN
from tests.support.exports import item, put_export, read_json

BUCKET = "exports"
READER = "rb/run/step/reader/"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_every_data_file_becomes_its_own_reader_file(s3: Any) -> None:
    files = [[item(n) for n in range(10)], [], [item(n) for n in range(10, 13)]]
    export, keys = put_export(s3, BUCKET, "rb/run/step/export", files)
    assert export_data_keys(s3, export) == keys  # the manifests are not data
    assert bridge_export(s3, export, BUCKET, READER) == 13
    for key, items in zip(keys, files, strict=True):
        assert read_json(s3, BUCKET, reader_key_for(key, READER)) == [{"Item": i} for i in items]
    written = s3.list_objects_v2(Bucket=BUCKET, Prefix=READER)["Contents"]
    assert len(written) == len(keys)


def test_a_stand_in_converts_here_the_embedded_world_and_aws_in_the_state_machine(
    s3: Any,
) -> None:
    """A stock moto (--endpoint-url) runs no Lambda code: the files are converted here. The
    embedded world's moto runs the bridge function (moto_lambda), as AWS does."""
    export, _ = put_export(s3, BUCKET, "p", [[item(1)], [item(2)]])
    assert STAND_IN.bridge_export(s3, export, BUCKET, "other/") == 2
    for world, prefix in ((EMBEDDED, "embedded/"), (REAL_ACCOUNT, "real/")):
        assert world.bridge_export(s3, export, BUCKET, prefix) is None
        assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
