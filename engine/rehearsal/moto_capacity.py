"""Make moto throttle writes to a PROVISIONED table as DynamoDB does when its write capacity
runs out (moto never throttles), in the embedded world's server when its shape asks for it
(`provisioned_write_units`): the buckets and counts are engine/rehearsal/provisioned.py's.

A write costs 1 WCU per started KB of the item (DynamoDB's size count; an update or delete
counts the item as it is before), twice that in a transaction. When the table's bucket holds
too few: PutItem, UpdateItem, DeleteItem and BatchWriteItem (the whole request) answer 400
ProvisionedThroughputExceededException; TransactWriteItems answers
TransactionCanceledException with the reason ThrottlingError for each item on a dry table.
What passes answers its ConsumedCapacity (when asked) as the model counted it.
The caller is the request's access key id (the engine signs as "testing"; the application
writer of `runbook simulate --app-writes` as "application"). Reads are not metered, nor a
table's indexes. engine/rehearsal/moto_contract.py checks what this relies on in moto.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from moto.dynamodb.exceptions import (
    ERROR_TYPE_PREFIX,
    DynamodbException,
    TransactionCanceledException,
)
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.responses import DynamoHandler

from engine.core.capacity import PROVISIONED, write_units
from engine.rehearsal.moto_fidelity import aws_item_size
from engine.rehearsal.provisioned import ProvisionedCapacity

WRITES = ("put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items")
THROTTLED = (
    "The level of configured provisioned throughput for the table was exceeded. Consider "
    "increasing your provisioning level with the UpdateTable API."
)
TRANSACTION_THROTTLED = "Throughput exceeds the current capacity of your table or index."
_ACCESS_KEY = re.compile(r"Credential=([^/,\s]+)/")


class ProvisionedThroughputExceeded(DynamodbException):
    error_type = ERROR_TYPE_PREFIX + "ProvisionedThroughputExceededException"

    def __init__(self) -> None:
        super().__init__(self.error_type, message=THROTTLED)


def item_size(attrs: dict[str, Any]) -> int:
    """An item in DynamoDB JSON, sized as DynamoDB counts it."""
    return sum(len(k.encode()) + aws_item_size(DynamoType(v)) for k, v in attrs.items())


def caller_of(headers: Any) -> str:
    match = _ACCESS_KEY.search(str(headers.get("Authorization") or ""))
    return match.group(1) if match else "unsigned"


class Meter:
    """What one write request asks of which tables, read from moto's parsed request body."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def provisioned(self, table: str) -> float | None:
        """The table's WriteCapacityUnits when it is PROVISIONED, else None."""
        found = self.backend.get_table(table)
        if found.billing_mode == PROVISIONED or (
            found.billing_mode is None and found.throughput.get("WriteCapacityUnits")
        ):
            return float(found.throughput["WriteCapacityUnits"])
        return None

    def existing(self, table: str, key: dict[str, Any]) -> int:
        item = self.backend.get_item(table, key)
        return item_size(item.to_json()["Attributes"]) if item is not None else 0

    def units(self, op: str, body: dict[str, Any]) -> list[tuple[str, float]]:
        """(table, units) per item of the request, in its order."""
        if op == "put_item":
            return [(body["TableName"], write_units(item_size(body["Item"]), "put"))]
        if op in ("update_item", "delete_item"):
            size = self.existing(body["TableName"], body["Key"])
            return [(body["TableName"], write_units(size, "put"))]
        if op == "batch_write_item":
            out = []
            for table, requests in body["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        size = item_size(request["PutRequest"]["Item"])
                    else:
                        size = self.existing(table, request["DeleteRequest"]["Key"])
                    out.append((table, write_units(size, "put")))
            return out
        out = []
        for entry in body["TransactItems"]:
            kind, spec = next(iter(entry.items()))
            if kind == "Put":
                size = item_size(spec["Item"])
            elif kind in ("Update", "Delete"):
                size = self.existing(spec["TableName"], spec["Key"])
            else:  # a ConditionCheck reads: no write units
                out.append((spec["TableName"], 0.0))
                continue
            out.append((spec["TableName"], write_units(size, "transact")))
        return out


def consumed(handler: Any, op: str, result: Any, demand: dict[str, tuple[float, float]]) -> Any:
    """The answer says what the write consumed, as DynamoDB's does (moto says 1.0 for any
    PutItem, nothing for a transaction): the engine's budget is corrected by it."""
    body = getattr(result, "result", None)
    if handler.body.get("ReturnConsumedCapacity") in ("TOTAL", "INDEXES") and isinstance(
        body, dict
    ):
        said = [{"TableName": t, "CapacityUnits": units} for t, (units, _) in demand.items()]
        many = op in ("batch_write_item", "transact_write_items")
        body["ConsumedCapacity"] = said if many else said[0]
    return result


def aws_provisioned_capacity(model: ProvisionedCapacity) -> bool:
    """Meter every write to a provisioned table with `model`; once per process (False when
    already patched: the first model stays)."""
    if getattr(DynamoHandler, "_runbook_capacity", False):
        return False

    def metered(op: str) -> Any:
        method = getattr(DynamoHandler, op)

        @functools.wraps(method)
        def checked(self: Any) -> Any:
            try:
                meter = Meter(self.dynamodb_backend)
                per_item = meter.units(op, self.body)
                tables = {t: meter.provisioned(t) for t, _ in per_item}
            except Exception:  # a malformed request or a missing table: moto answers it
                return method(self)
            demand: dict[str, tuple[float, float]] = {}
            for table, units in per_item:
                wcu = tables[table]
                if wcu is not None:
                    demand[table] = (demand.get(table, (0.0, wcu))[0] + units, wcu)
            if not demand:
                return method(self)
            dry = model.admit(caller_of(self.headers), demand)
            if not dry:
                return consumed(self, op, method(self), demand)
            if op != "transact_write_items":
                raise ProvisionedThroughputExceeded()
            raise TransactionCanceledException(
                [
                    ("ThrottlingError", TRANSACTION_THROTTLED, None) if t in dry else (None,) * 3
                    for t, _ in per_item
                ]
            )

        return checked

    for op in WRITES:
        setattr(DynamoHandler, op, metered(op))
    DynamoHandler._runbook_capacity = True  # type: ignore[attr-defined]
    return True
