"""Fault and state injection on real boto3 clients (botocore event hooks), for AWS behaviour
moto does not have: an update still in progress, a conflict, an unavailable feature.

A hook answers an operation with AWS's error before the request is sent ('before-call'), or
rewrites a field of moto's answer ('after-call'); everything else is moto's real answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSResponse


def fail_first(
    client: Any, operation: str, code: str, times: int, status: int = 400
) -> list[dict[str, Any]]:
    """The first `times` calls of `operation` fail with `code`; returns the calls seen."""
    seen: list[dict[str, Any]] = []
    service = client.meta.service_model.service_id.hyphenize()

    def handler(params: Any, **_: Any) -> Any:
        seen.append(params)
        if len(seen) <= times:
            body = {
                "Error": {"Code": code, "Message": f"injected {code}"},
                "ResponseMetadata": {"HTTPStatusCode": status},
            }
            return AWSResponse("https://injected", status, {}, None), body
        return None

    client.meta.events.register(f"before-call.{service}.{operation}", handler)
    return seen


def rewrite_answer(
    client: Any, operation: str, change: Callable[[dict[str, Any], int], None]
) -> list[int]:
    """`change(parsed, n)` may rewrite the n-th answer of `operation` (0-based)."""
    calls: list[int] = []
    service = client.meta.service_model.service_id.hyphenize()

    def handler(parsed: dict[str, Any], **_: Any) -> None:
        change(parsed, len(calls))
        calls.append(len(calls))

    client.meta.events.register(f"after-call.{service}.{operation}", handler)
    return calls


def refuse_item(client: Any, attribute: str, value: str, message: str) -> list[str]:
    """DynamoDB refuses the item whose `attribute` is the string `value` with a
    ValidationException: alone in a PutItem, and inside a TransactWriteItems, which AWS then
    refuses whole. This models a limit the engine's own checks do not know (moto holds the
    item); returns the operations refused."""
    refused: list[str] = []
    body = {
        "Error": {"Code": "ValidationException", "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": 400},
    }

    def carries(item: dict[str, Any]) -> bool:
        return item.get(attribute) == {"S": value}

    def on_put(params: Any, **_: Any) -> Any:
        if carries(json.loads(params["body"])["Item"]):
            refused.append("PutItem")
            return AWSResponse("https://injected", 400, {}, None), body
        return None

    def on_transaction(params: Any, **_: Any) -> Any:
        ops = json.loads(params["body"])["TransactItems"]
        if any(carries(op.get("Put", {}).get("Item", {})) for op in ops):
            refused.append("TransactWriteItems")
            return AWSResponse("https://injected", 400, {}, None), body
        return None

    client.meta.events.register("before-call.dynamodb.PutItem", on_put)
    client.meta.events.register("before-call.dynamodb.TransactWriteItems", on_transaction)
    return refused
