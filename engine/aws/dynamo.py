"""DynamoDB helpers shared by the data actions: streaming scans with resumable cursors, exact
counts, retried batch writes/gets, conditional puts, and type (de)serialisation.

Everything works on the low-level client so cursors (LastEvaluatedKey) are plain
DynamoDB-JSON dicts that fit the journal.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from engine.core.clock import Clock

MAX_BATCH_WRITE = 25
MAX_BATCH_GET = 100
MAX_ATTEMPTS = 10
BASE_BACKOFF = 0.05
MAX_BACKOFF = 5.0
THROTTLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }
)

_ser = TypeSerializer()
_deser = TypeDeserializer()


class RetriesExhausted(Exception):
    """DynamoDB kept throttling or leaving items unprocessed."""


def to_python(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deser.deserialize(v) for k, v in item.items()}


def _prep(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {k: _prep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_prep(v) for v in value]
    return value


def to_dynamo(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(_prep(v)) for k, v in item.items()}


def av(value: Any) -> dict[str, Any]:
    """One attribute value in DynamoDB JSON."""
    return _ser.serialize(_prep(value))


def backoff_seconds(attempt: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter."""
    cap = min(MAX_BACKOFF, BASE_BACKOFF * (2**attempt))
    return (rng or random).uniform(0, cap)


def is_throttle(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in THROTTLE_CODES


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _sleep(clock: Clock | None, seconds: float) -> None:
    if clock is not None:
        clock.sleep_real(seconds)


def call_with_retry(clock: Clock | None, fn: Callable[..., Any], **kwargs: Any) -> Any:
    """Call fn, retrying throttling errors with backoff (botocore retries too; this is the
    outer loop for throttling that outlasts it)."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            return fn(**kwargs)
        except ClientError as exc:
            if not is_throttle(exc) or attempt == MAX_ATTEMPTS - 1:
                raise
            _sleep(clock, backoff_seconds(attempt))
    raise AssertionError("unreachable")


def scan_pages(
    client: Any,
    table: str,
    *,
    start_key: Mapping[str, Any] | None = None,
    segment: int | None = None,
    total_segments: int | None = None,
    page_size: int | None = None,
    clock: Clock | None = None,
    on_response: Callable[[dict[str, Any]], None] | None = None,
    **extra: Any,
) -> Iterator[tuple[list[dict[str, Any]], dict[str, Any] | None]]:
    """Yield (items as Python dicts, LastEvaluatedKey or None) page by page.

    Resume by passing the last yielded key as start_key. Pages may be empty (filters).
    `on_response` sees each page's raw answer (its ConsumedCapacity, say) before it is yielded.
    """
    kwargs: dict[str, Any] = {"TableName": table, **extra}
    if total_segments and total_segments > 1:
        kwargs["Segment"] = segment or 0
        kwargs["TotalSegments"] = total_segments
    if page_size:
        kwargs["Limit"] = page_size
    key = dict(start_key) if start_key else None
    while True:
        if key:
            kwargs["ExclusiveStartKey"] = key
        resp = call_with_retry(clock, client.scan, **kwargs)
        if on_response is not None:
            on_response(resp)
        key = resp.get("LastEvaluatedKey")
        yield [to_python(i) for i in resp.get("Items", [])], key
        if not key:
            return


def count_items(client: Any, table: str, clock: Clock | None = None, **extra: Any) -> int:
    """Exact item count: a paginated Scan with Select=COUNT (never the lagging ItemCount)."""
    total = 0
    kwargs: dict[str, Any] = {"TableName": table, "Select": "COUNT", **extra}
    while True:
        resp = call_with_retry(clock, client.scan, **kwargs)
        total += int(resp.get("Count", 0))
        key = resp.get("LastEvaluatedKey")
        if not key:
            return total
        kwargs["ExclusiveStartKey"] = key
        if clock is not None:
            clock.check()


class ShortScan(Exception):
    """The scan read fewer items than the table held at the start, and the table did not
    shrink as much meanwhile: a page was lost somewhere. The step is not done."""


def check_scan_arithmetic(
    entity: str, counted: int, scanned: int, now: Callable[[], int]
) -> str | None:
    """Why a finished scan cannot be trusted, or None. Short of the start count is explained
    only by the table holding no more than was scanned now (the application deleted items)."""
    if scanned >= counted:
        return None
    held = now()
    if held <= scanned:
        return None
    return (
        f"{entity}: scanned {scanned:,} items, but {counted:,} were counted at the start and "
        f"the table still holds {held:,}: {counted - scanned:,} were never read (an answer "
        "lost on the way?)"
    )


def table_exists(client: Any, table: str) -> bool:
    try:
        client.describe_table(TableName=table)
        return True
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return False
        raise


def batch_write(
    client: Any,
    table: str,
    requests: list[dict[str, Any]],
    clock: Clock | None = None,
    rng: random.Random | None = None,
) -> int:
    """Write PutRequest/DeleteRequest dicts (DynamoDB JSON) in batches of at most 25,
    retrying UnprocessedItems and throttling with exponential backoff and jitter."""
    written = 0
    for start in range(0, len(requests), MAX_BATCH_WRITE):
        pending = requests[start : start + MAX_BATCH_WRITE]
        attempt = 0
        while pending:
            try:
                resp = client.batch_write_item(RequestItems={table: pending})
            except ClientError as exc:
                if not is_throttle(exc):
                    raise
                resp = {"UnprocessedItems": {table: pending}}
            left = resp.get("UnprocessedItems", {}).get(table, [])
            written += len(pending) - len(left)
            pending = left
            if pending:
                if attempt >= MAX_ATTEMPTS:
                    raise RetriesExhausted(
                        f"{table}: {len(pending)} writes still unprocessed after {attempt} retries"
                    )
                _sleep(clock, backoff_seconds(attempt, rng))
                attempt += 1
    return written


def put_requests(items: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{"PutRequest": {"Item": to_dynamo(i)}} for i in items]


def batch_get(
    client: Any,
    table: str,
    keys: list[Mapping[str, Any]],
    clock: Clock | None = None,
    projection: str | None = None,
    names: Mapping[str, str] | None = None,
    consistent: bool = False,
) -> list[dict[str, Any]]:
    """Fetch items by key (Python dicts), at most 100 keys per call, retrying UnprocessedKeys
    with backoff. A key asked twice is asked once (BatchGetItem rejects duplicates)."""
    out: list[dict[str, Any]] = []
    unique = list({json.dumps(to_dynamo(k), sort_keys=True): k for k in keys}.values())
    for start in range(0, len(unique), MAX_BATCH_GET):
        chunk = unique[start : start + MAX_BATCH_GET]
        req: dict[str, Any] = {"Keys": [to_dynamo(k) for k in chunk]}
        if consistent:
            req["ConsistentRead"] = True
        if projection:
            req["ProjectionExpression"] = projection
        if names:
            req["ExpressionAttributeNames"] = dict(names)
        attempt = 0
        while req and req.get("Keys"):
            try:
                resp = client.batch_get_item(RequestItems={table: req})
            except ClientError as exc:
                if not is_throttle(exc):
                    raise
                resp = {"UnprocessedKeys": {table: req}}
            out += [to_python(i) for i in resp.get("Responses", {}).get(table, [])]
            req = resp.get("UnprocessedKeys", {}).get(table) or {}
            if req.get("Keys"):
                if attempt >= MAX_ATTEMPTS:
                    raise RetriesExhausted(f"{table}: keys still unprocessed after retries")
                _sleep(clock, backoff_seconds(attempt))
                attempt += 1
    return out


def conditional_put(
    client: Any,
    table: str,
    item: Mapping[str, Any],
    condition: str,
    values: Mapping[str, Any] | None = None,
    names: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    key: Mapping[str, Any] | None = None,
    on_response: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[bool, dict[str, Any] | None]:
    """PutItem with a condition. Returns (written, existing item when the condition failed).
    With `on_response`, the put asks for its ConsumedCapacity (TOTAL) and hands it the answer
    of a put that wrote (a failed condition's error carries none).

    Where the error carries no item (dynalite ignores ReturnValuesOnConditionCheckFailure),
    the existing item is read back by `key` (strongly consistent); None if it is gone."""
    kwargs: dict[str, Any] = {
        "TableName": table,
        "Item": to_dynamo(item),
        "ConditionExpression": condition,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    if values:
        kwargs["ExpressionAttributeValues"] = {k: av(v) for k, v in values.items()}
    if names:
        kwargs["ExpressionAttributeNames"] = dict(names)
    if on_response is not None:
        kwargs["ReturnConsumedCapacity"] = "TOTAL"
    try:
        resp = call_with_retry(clock, client.put_item, **kwargs)
        if on_response is not None:
            on_response(resp)
        return True, None
    except ClientError as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise
        old = exc.response.get("Item")
        if old is None and key is not None:
            got = call_with_retry(
                clock, client.get_item, TableName=table, Key=to_dynamo(key), ConsistentRead=True
            )
            old = got.get("Item")
        return False, to_python(old) if old else None


def conditional_delete(
    client: Any,
    table: str,
    key: Mapping[str, Any],
    condition: str | None = None,
    values: Mapping[str, Any] | None = None,
    names: Mapping[str, str] | None = None,
    clock: Clock | None = None,
) -> bool:
    """DeleteItem, optionally conditional. False when the condition failed."""
    kwargs: dict[str, Any] = {"TableName": table, "Key": to_dynamo(key)}
    if condition:
        kwargs["ConditionExpression"] = condition
    if values:
        kwargs["ExpressionAttributeValues"] = {k: av(v) for k, v in values.items()}
    if names:
        kwargs["ExpressionAttributeNames"] = dict(names)
    try:
        call_with_retry(clock, client.delete_item, **kwargs)
        return True
    except ClientError as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise
        return False
