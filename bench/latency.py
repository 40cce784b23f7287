"""Added latency for a boto3 client, through botocore's `before-send` event: the same handler on
every side of a comparison, so each request pays the same round trip.

`answer_writes=True` is the *latency model*: writes (PutItem, BatchWriteItem,
TransactWriteItems) are answered in the client as soon as the delay has passed, as if the
server cost nothing. It measures the client's concurrency only (what a real account sees when
the server is not the limit) and says nothing about the server. Its reads go to the server,
unless a `ReadReplay` is given: then each Scan is sent to the server once, recorded, and
answered from the record after the delay (moto's single core scans about 700 items/s here,
which would otherwise cap both sides of the model, whatever the client does).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.httpsession import URLLib3Session

WRITES = {
    "PutItem": b"{}",
    "BatchWriteItem": b'{"UnprocessedItems": {}}',
    "TransactWriteItems": b"{}",
}


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data


class RequestMeter:
    """Counts HTTP requests per operation (every attempt, retries included)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    def total(self) -> int:
        return sum(self.counts.values())


def _operation(request: Any) -> str:
    target = request.headers.get("X-Amz-Target", b"")
    if isinstance(target, bytes):
        target = target.decode()
    return str(target).rsplit(".", 1)[-1]


class ReadReplay:
    """Scan answers by request body: fetched from the server once, then replayed (the signed
    body is the same for the same page of the same scan, run after run)."""

    HEADERS = {"Content-Type": "application/x-amz-json-1.0"}

    def __init__(self) -> None:
        self.answers: dict[bytes, bytes] = {}
        self.lock = threading.Lock()
        self.http = URLLib3Session()

    def answer(self, request: Any) -> AWSResponse:
        key = bytes(request.body or b"")
        with self.lock:
            recorded = self.answers.get(key)
        if recorded is None:
            response = self.http.send(request)
            if response.status_code != 200:
                return response  # errors are never recorded
            recorded = response.content
            with self.lock:
                self.answers[key] = recorded
        return AWSResponse(request.url, 200, self.HEADERS, _Body(recorded))


def add_latency(
    client: Any,
    seconds: float,
    answer_writes: bool = False,
    meter: RequestMeter | None = None,
    replay: ReadReplay | None = None,
) -> None:
    """Every request of `client` waits `seconds` before it is sent (or answered, see above)."""

    def before_send(request: Any, **_: Any) -> AWSResponse | None:
        op = _operation(request)
        if meter is not None:
            with meter.lock:
                meter.counts[op] += 1
        if seconds > 0:
            time.sleep(seconds)
        if answer_writes and op in WRITES:
            headers = {"Content-Type": "application/x-amz-json-1.0"}
            return AWSResponse(request.url, 200, headers, _Body(WRITES[op]))
        if replay is not None and op == "Scan":
            return replay.answer(request)
        return None

    client.meta.events.register_first("before-send.dynamodb", before_send)
