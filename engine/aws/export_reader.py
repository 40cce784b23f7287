"""One data file of a DynamoDB export -> the Distributed Map reader's input, streamed.

AWS writes an export as gzipped JSON lines, `{"Item": <DynamoDB JSON>}` per line, in several
files under `<prefix>/AWSDynamoDB/<export id>/data/`; the ItemReader (InputType JSON) needs one
uncompressed JSON array. This module converts one file, with memory bounded by about one part
whatever the file's size.

STANDALONE: engine/aws/bridge_function.py zips this file alone into the bridge Lambda function,
and a rehearsal runs the same code here. It imports the standard library and boto3 (which the
Lambda Python runtime ships) only. Never import `engine` here.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import boto3

MIN_PART_BYTES = 5 * 1024 * 1024  # S3: every part of a multipart upload but the last
MAX_PARTS = 10_000  # S3: parts of one multipart upload
PART_GROWTH_EVERY = 1_000  # parts: then each part grows by one base size (10,000 parts fit)
READ_CHUNK = 1024 * 1024  # bytes read from the (decompressed) stream at a time
SUFFIXES = (".json.gz", ".gz", ".json")  # longest first: AWS names `<id>.json.gz`, moto `<id>.gz`


def reader_key_for(data_key: str, reader_prefix: str) -> str:
    """`<reader_prefix><file name without .json.gz / .gz / .json>.json`: deterministic, so a
    redrive rewrites the same object."""
    name = data_key.rsplit("/", 1)[-1]
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return f"{reader_prefix}{name}.json"


def _lines(stream: Any) -> Iterator[bytes]:
    """The stream's lines, read a chunk at a time (never the whole body)."""
    rest = b""
    while True:
        chunk = stream.read(READ_CHUNK)
        if not chunk:
            break
        rest += chunk
        *whole, rest = rest.split(b"\n")
        yield from whole
    if rest:
        yield rest


def _item_json(line: bytes, data_key: str, number: int) -> bytes:
    """One export line, checked and re-serialized compactly as `{"Item":{...}}`."""
    try:
        parsed = json.loads(line)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both
        raise ValueError(f"{data_key} line {number}: not JSON: {exc}") from exc
    if not (
        isinstance(parsed, dict) and set(parsed) == {"Item"} and isinstance(parsed["Item"], dict)
    ):
        raise ValueError(f'{data_key} line {number}: not {{"Item": {{...}}}}')
    out = json.dumps({"Item": parsed["Item"]}, separators=(",", ":"), ensure_ascii=False)
    return out.encode("utf-8")


def reader_array(stream: Any, data_key: str) -> Iterator[bytes]:
    """The reader's input, piece by piece (pure: no I/O but the stream's): `[`, each item
    (comma-led but the first), `]`. Items: the pieces less two."""
    yield b"["
    first = True
    for number, line in enumerate(_lines(stream), start=1):
        if not line.strip():
            continue
        yield (b"" if first else b",") + _item_json(line, data_key, number)
        first = False
    yield b"]"


class _Upload:
    """Bytes to one S3 object: a single PutObject while they fit in `part_bytes`, else a
    multipart upload whose parts are at least 5 MiB (S3's minimum but for the last)."""

    def __init__(self, s3: Any, bucket: str, key: str, part_bytes: int) -> None:
        self.s3, self.bucket, self.key = s3, bucket, key
        self.single = part_bytes
        self.base = max(part_bytes, MIN_PART_BYTES)
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []

    def _part_size(self) -> int:
        # grows every 1,000 parts so that a huge file still fits in 10,000 parts
        return self.base * (1 + len(self.parts) // PART_GROWTH_EVERY)

    def write(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= self._part_size():
            # the whole buffer goes (one part >= the size, by at most a line): no copy of it
            self._send(self.buffer)
            self.buffer = bytearray()

    def _send(self, body: bytes | bytearray) -> None:
        if self.upload_id is None:
            self.upload_id = self.s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType="application/json"
            )["UploadId"]
        number = len(self.parts) + 1
        if number > MAX_PARTS:
            raise ValueError(f"s3://{self.bucket}/{self.key}: more than {MAX_PARTS} parts")
        got = self.s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=body
        )
        self.parts.append({"PartNumber": number, "ETag": got["ETag"]})

    def close(self) -> None:
        if self.upload_id is None and len(self.buffer) <= self.single:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=self.buffer,
                ContentType="application/json",
            )
            return
        if self.buffer or not self.parts:
            self._send(self.buffer)
            self.buffer = bytearray()
        self.s3.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts},
        )

    def abort(self) -> None:
        if self.upload_id is not None:
            self.s3.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
            )


def convert_data_file(
    s3: Any,
    bucket: str,
    data_key: str,
    out_bucket: str,
    out_key: str,
    part_bytes: int = 8 * 1024 * 1024,
) -> int:
    """Stream `data_key` (gzip when it ends in .gz) line by line into a JSON array of
    `{"Item": ...}` at `out_key`; returns the items. A line that is not `{"Item": {...}}`
    raises ValueError naming the file and line; a multipart upload is aborted on any error."""
    body = s3.get_object(Bucket=bucket, Key=data_key)["Body"]
    stream = gzip.GzipFile(fileobj=body, mode="rb") if data_key.endswith(".gz") else body
    upload = _Upload(s3, out_bucket, out_key, part_bytes)
    pieces = 0
    try:
        for piece in reader_array(stream, data_key):
            upload.write(piece)
            pieces += 1
        upload.close()
    except BaseException:
        upload.abort()
        raise
    finally:
        body.close()
    return pieces - 2  # the brackets


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The bridge function: `{"Bucket", "Key", "ReaderBucket", "ReaderPrefix"}` ->
    `{"Bucket": ReaderBucket, "Key": <reader key>, "items": n}`."""
    out_key = reader_key_for(event["Key"], event["ReaderPrefix"])
    n = convert_data_file(
        boto3.client("s3"), event["Bucket"], event["Key"], event["ReaderBucket"], out_key
    )
    return {"Bucket": event["ReaderBucket"], "Key": out_key, "items": n}
