"""The transaction write path's tools: its params, a request counter, answers injected for
TransactWriteItems as DynamoDB would give them (tests of migrate_entity's "transact" path)."""

from __future__ import annotations

import json
from typing import Any

from botocore.awsrequest import AWSResponse

from engine.aws import dynamo
from tests.support.write_path import T_EXPENSES

TRANSACT = {"entity": "expenses", "write_path": "transact", "page_size": 150}


class Calls:
    """Counts the requests of each DynamoDB operation a client sends (an observer only)."""

    def __init__(self, client: Any) -> None:
        self.count: dict[str, int] = {}
        self.sizes: list[int] = []
        client.meta.events.register("before-parameter-build.dynamodb", self.seen)

    def seen(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.count[model.name] = self.count.get(model.name, 0) + 1
        if model.name == "TransactWriteItems":
            self.sizes.append(len(params["TransactItems"]))


def target_items(ddb: Any) -> dict[str, dict[str, Any]]:
    return {i["expenseId"]: i for p, _ in dynamo.scan_pages(ddb, T_EXPENSES) for i in p}


def error_response(request: Any, body: dict[str, Any]) -> AWSResponse:
    raw_body = json.dumps(body).encode()

    class Raw:
        def stream(self, **_: Any) -> Any:
            yield raw_body

    headers = {"Content-Type": "application/x-amz-json-1.0"}
    return AWSResponse(request.url, 400, headers, Raw())


def answer_transactions(client: Any, answer: Any) -> list[int]:
    """Every TransactWriteItems is first offered to `answer(n, request)`: a body makes DynamoDB's
    400 answer with it, None sends the request on."""
    sent = [0]

    def before_send(request: Any, **_: Any) -> AWSResponse | None:
        if b"TransactWriteItems" not in request.headers.get("X-Amz-Target", b""):
            return None
        sent[0] += 1
        body = answer(sent[0], request)
        return None if body is None else error_response(request, body)

    client.meta.events.register_first("before-send.dynamodb", before_send)
    return sent
