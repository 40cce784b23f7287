"""The bridge's conversion (engine/aws/export_reader.py): one data file of an AWS-shaped
export -> one JSON array of exactly its items, streamed, on real moto S3."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from engine.aws.export_reader import (
    MIN_PART_BYTES,
    convert_data_file,
    handler,
    reader_array,
    reader_key_for,
)
from tests.support.exports import item, jsonl, put_export, read_json, run_python, s3_env

BUCKET = "exports"
PREFIX = "rb/run/step/export"
READER = "rb/run/step/reader/"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_reader_key_is_the_file_name_without_its_suffixes() -> None:
    assert reader_key_for("p/AWSDynamoDB/x/data/abc.json.gz", "r/") == "r/abc.json"
    assert reader_key_for("p/AWSDynamoDB/x/data/abc.gz", "r/") == "r/abc.json"  # moto's names
    assert reader_key_for("p/data/abc.json", "r/") == "r/abc.json"
    assert reader_key_for("abc", "r/") == "r/abc.json"


def test_the_transform_alone_yields_the_array_piece_by_piece() -> None:
    items = [item(n) for n in range(3)]
    lines = "".join(json.dumps({"Item": i}) + "\n\n" for i in items).encode()  # blank lines too
    stream = gzip.GzipFile(fileobj=io.BytesIO(gzip.compress(lines)), mode="rb")
    pieces = list(reader_array(stream, "k.json.gz"))
    assert pieces[0] == b"[" and pieces[-1] == b"]" and len(pieces) == len(items) + 2
    assert pieces[2].startswith(b",") and not pieces[1].startswith(b",")
    assert json.loads(b"".join(pieces)) == [{"Item": i} for i in items]
    assert list(reader_array(io.BytesIO(b""), "empty.json")) == [b"[", b"]"]


def test_each_reader_file_is_exactly_its_data_files_items(s3: Any) -> None:
    files = [[item(n) for n in range(0, 40)], [], [item(n) for n in range(40, 45)]]
    _, keys = put_export(s3, BUCKET, PREFIX, files)
    for key, items in zip(keys, files, strict=True):
        out = reader_key_for(key, READER)
        assert convert_data_file(s3, BUCKET, key, BUCKET, out) == len(items)
        got = s3.get_object(Bucket=BUCKET, Key=out)
        assert got["ContentType"] == "application/json"
        assert json.loads(got["Body"].read()) == [{"Item": i} for i in items]


def test_a_plain_file_and_blank_lines(s3: Any) -> None:
    items = [item(n) for n in range(3)]
    body = b"\n" + jsonl(items[:2]) + b"  \n\n" + jsonl(items[2:]).rstrip(b"\n")  # no final \n
    s3.put_object(Bucket=BUCKET, Key="plain/data/one.json", Body=body)
    assert convert_data_file(s3, BUCKET, "plain/data/one.json", BUCKET, "r/one.json") == 3
    assert read_json(s3, BUCKET, "r/one.json") == [{"Item": i} for i in items]


@pytest.mark.parametrize(
    "bad", [b"{not json", b'{"Other": {}}', b'{"Item": [1]}', b"[]", b'{"Item": {}, "x": 1}']
)
def test_a_bad_line_names_the_file_and_line(s3: Any, bad: bytes) -> None:
    body = gzip.compress(jsonl([item(1), item(2)]) + bad + b"\n")
    s3.put_object(Bucket=BUCKET, Key="p/data/bad.json.gz", Body=body)
    with pytest.raises(ValueError, match=r"p/data/bad\.json\.gz line 3"):
        convert_data_file(s3, BUCKET, "p/data/bad.json.gz", BUCKET, "r/bad.json")
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="r/")


def big_items(count: int) -> Iterator[dict[str, Any]]:
    for n in range(count):
        yield {"id": {"S": f"{n:08d}"}, "pad": {"S": f"{n:08d}-" + "p" * 1000}, "n": {"N": "1"}}


def test_large_output_goes_multipart_in_parts_of_5_mib(s3: Any) -> None:
    count = 24_000  # ~25 MiB of output: parts of 5 MiB (part_bytes clamped) and a last one
    stream = gzip.compress(b"".join(jsonl([i]) for i in big_items(count)))
    s3.put_object(Bucket=BUCKET, Key="p/data/big.json.gz", Body=stream)
    calls: list[str] = []
    s3.meta.events.register("before-call.s3.*", lambda model, **_: calls.append(model.name))
    n = convert_data_file(s3, BUCKET, "p/data/big.json.gz", BUCKET, "r/big.json", 1024)
    assert n == count
    size = s3.head_object(Bucket=BUCKET, Key="r/big.json")["ContentLength"]
    assert size > 4 * MIN_PART_BYTES
    assert "PutObject" not in calls and calls.count("CompleteMultipartUpload") == 1
    assert calls.count("UploadPart") == size // MIN_PART_BYTES + (size % MIN_PART_BYTES > 0)
    got = read_json(s3, BUCKET, "r/big.json")
    assert got == [{"Item": i} for i in big_items(count)]
    assert s3.get_object(Bucket=BUCKET, Key="r/big.json")["ContentType"] == "application/json"


MEASURE = """
import json, sys, tracemalloc
import boto3
from engine.aws.export_reader import convert_data_file
s3 = boto3.client("s3")
s3.head_object(Bucket=sys.argv[1], Key=sys.argv[2])  # the client's model loaded, not counted
tracemalloc.start()
n = convert_data_file(s3, sys.argv[1], sys.argv[2], sys.argv[1], sys.argv[3], 1024)
print(json.dumps({"items": n, "peak": tracemalloc.get_traced_memory()[1]}))
"""


def test_memory_stays_about_one_part_whatever_the_output(moto_endpoint: str) -> None:
    # the conversion in a process of its own: moto (here) keeps parts in memory until the
    # upload completes, which would count against the converter in one process
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket=BUCKET)
    count = 24_000
    stream = gzip.compress(b"".join(jsonl([i]) for i in big_items(count)))
    s3.put_object(Bucket=BUCKET, Key="p/data/big.json.gz", Body=stream)
    out = run_python(
        ["-c", MEASURE, BUCKET, "p/data/big.json.gz", "r/big.json"], s3_env(moto_endpoint)
    )
    got = json.loads(out)
    size = s3.head_object(Bucket=BUCKET, Key="r/big.json")["ContentLength"]
    assert got["items"] == count and size > 4 * MIN_PART_BYTES
    assert got["peak"] < 3 * MIN_PART_BYTES, f"peak {got['peak']:,} for {size:,} bytes out"
    assert got["peak"] < size / 2


def test_a_failure_mid_multipart_aborts_the_upload(s3: Any) -> None:
    lines = b"".join(jsonl([i]) for i in big_items(6_000)) + b"oops\n"  # > 5 MiB, then bad
    s3.put_object(Bucket=BUCKET, Key="p/data/late.json.gz", Body=gzip.compress(lines))
    calls: list[str] = []
    s3.meta.events.register("before-call.s3.*", lambda model, **_: calls.append(model.name))
    with pytest.raises(ValueError, match=r"late\.json\.gz line 6001"):
        convert_data_file(s3, BUCKET, "p/data/late.json.gz", BUCKET, "r/late.json", 1024)
    assert "UploadPart" in calls and calls[-1] == "AbortMultipartUpload"
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="r/")


def test_handler_converts_one_file_and_says_where(s3: Any) -> None:
    _, keys = put_export(s3, BUCKET, PREFIX, [[item(1), item(2)]])
    event = {"Bucket": BUCKET, "Key": keys[0], "ReaderBucket": BUCKET, "ReaderPrefix": READER}
    got = handler(event, None)
    assert got == {"Bucket": BUCKET, "Key": reader_key_for(keys[0], READER), "items": 2}
    assert read_json(s3, BUCKET, got["Key"]) == [{"Item": item(1)}, {"Item": item(2)}]
