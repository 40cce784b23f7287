"""The CAPACITY MODEL: a provisioned DynamoDB table's write capacity as token buckets, one per
table and one per partition key (one company), answering writes in the client as DynamoDB
does when they run dry: PutItem with 400 ProvisionedThroughputExceededException, a
transaction with TransactionCanceledException whose reasons say ThrottlingError. What passes
is answered 200 with its ConsumedCapacity (1 WCU per started KB, twice that in a
transaction). Reads and every other table still go to the server.

A bucket holds one second of units (DynamoDB keeps up to five minutes of unused capacity as
burst; the model keeps none, so it is stricter). Every answer is counted per second, per
writer ("migration" or "app") and per company: the bench's figures come from these counts.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse

from engine.core.buckets import CapacityBucket as Bucket
from engine.core.capacity import write_units as units_for

JSON = {"Content-Type": "application/x-amz-json-1.0"}
PREFIX = "com.amazonaws.dynamodb.v20120810#"


@dataclass
class Counts:
    """Per whole second since the model began: units consumed, requests, throttled requests."""

    units: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    requests: int = 0
    throttled: int = 0
    throttled_at: dict[int, int] = field(default_factory=lambda: defaultdict(int))


class CapacityModel:
    def __init__(
        self,
        table: str,
        write_units: float,
        partition_units: float,
        key: str = "companyId",
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.table, self.key, self.now = table, key, now
        self.began = now()
        self.lock = threading.Lock()
        self.table_bucket = Bucket(write_units, now)
        self.partition_units = partition_units
        self.partitions: dict[str, Bucket] = {}
        self.counts: dict[str, Counts] = defaultdict(Counts)
        # migration units per company per second, and when each company's last write landed
        self.company_units: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
        self.last_write: dict[str, float] = {}

    def set_capacity(self, write_units: float) -> None:
        with self.lock:
            self.table_bucket.set_rate(write_units)

    def second(self) -> int:
        return int(self.now() - self.began)

    def write(self, who: str, entries: list[tuple[str, float]]) -> list[bool] | None:
        """Consume the entries' units (company, units) all at once; None when they passed,
        else per entry whether its partition (or the table) had no units for it."""
        with self.lock:
            counts = self.counts[who]
            counts.requests += 1
            need: dict[str, float] = defaultdict(float)
            for company, units in entries:
                need[company] += units
            total = sum(need.values())
            table_ok = self.table_bucket.has(total)
            dry = {
                c
                for c, u in need.items()
                if not self.partitions.setdefault(c, Bucket(self.partition_units, self.now)).has(u)
            }
            if not table_ok or dry:
                counts.throttled += 1
                counts.throttled_at[self.second()] += 1
                return [not table_ok or c in dry for c, _ in entries]
            self.table_bucket.take(total)
            for c, u in need.items():
                self.partitions[c].take(u)
            second = self.second()
            counts.units[second] += total
            if who == "migration":
                for c, u in need.items():
                    self.company_units[c][second] += u
                    self.last_write[c] = self.now() - self.began
            return None

    # --- the wire ------------------------------------------------------------------------

    def answer(self, who: str, request: Any) -> AWSResponse | None:
        """A write to the modelled table, answered here; None: not ours, send it on."""
        target = request.headers.get("X-Amz-Target", b"")
        op = (target.decode() if isinstance(target, bytes) else str(target)).rsplit(".", 1)[-1]
        if op not in ("PutItem", "TransactWriteItems"):
            return None
        body = json.loads(request.body or b"{}")
        if op == "PutItem":
            if body.get("TableName") != self.table:
                return None
            entries = [(self._company(body["Item"]), _units(body["Item"], 1.0))]
        else:
            puts = [e.get("Put", {}) for e in body.get("TransactItems", [])]
            if not puts or any(p.get("TableName") != self.table for p in puts):
                return None
            entries = [(self._company(p["Item"]), _units(p["Item"], 2.0)) for p in puts]
        throttled = self.write(who, entries)
        consumed = sum(u for _, u in entries)
        wants = body.get("ReturnConsumedCapacity") in ("TOTAL", "INDEXES")
        if throttled is None:
            if op == "PutItem":
                out: dict[str, Any] = (
                    {"ConsumedCapacity": {"TableName": self.table, "CapacityUnits": consumed}}
                    if wants
                    else {}
                )
            else:
                out = (
                    {"ConsumedCapacity": [{"TableName": self.table, "CapacityUnits": consumed}]}
                    if wants
                    else {}
                )
            return _response(request, 200, out)
        if op == "PutItem":
            return _response(
                request,
                400,
                {
                    "__type": PREFIX + "ProvisionedThroughputExceededException",
                    "message": "The level of configured provisioned throughput for the table "
                    "was exceeded.",
                },
            )
        reasons = [
            {"Code": "ThrottlingError", "Message": "Throughput exceeds the current capacity"}
            if dry
            else {"Code": "None"}
            for dry in throttled
        ]
        codes = ", ".join(r["Code"] for r in reasons)
        return _response(
            request,
            400,
            {
                "__type": PREFIX + "TransactionCanceledException",
                "Message": f"Transaction cancelled, please refer cancellation reasons for "
                f"specific reasons [{codes}]",
                "CancellationReasons": reasons,
            },
        )

    def _company(self, item: dict[str, Any]) -> str:
        value = item.get(self.key, {})
        return str(next(iter(value.values()), "")) if isinstance(value, dict) else ""

    def attach(self, client: Any, who: str) -> None:
        """`client`'s writes to the table are answered by the model, counted as `who`."""
        client.meta.events.register_first(
            "before-send.dynamodb", lambda request, **_: self.answer(who, request)
        )


def _units(item: dict[str, Any], factor: float) -> float:
    size = len(json.dumps(item))  # DynamoDB JSON: a little above DynamoDB's own count
    return units_for(size, "transact" if factor == 2.0 else "put")


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data


def _response(request: Any, status: int, body: dict[str, Any]) -> AWSResponse:
    return AWSResponse(request.url, status, JSON, _Body(json.dumps(body).encode()))
