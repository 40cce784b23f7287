"""Can the target table hold this item? Pure checks against what DescribeTable reports (no I/O).

moto writes items AWS rejects (a number in a GSI key declared S; a size its own count allows),
so the migration checks every transformed item before writing it, by DynamoDB's rules:

* every key attribute of the table and of each GSI/LSI that the item carries has the declared
  type (S, N or B) and is not empty; the table's own keys must be present; a partition key
  value is at most 2048 bytes, a sort key at most 1024;
* the item's size is at most 400 KB, counted as DynamoDB counts it: attribute names plus
  values in UTF-8 bytes; a number about 1 byte per 2 significant digits + 1 (+1 if negative);
  binary its length; null and bool 1 byte; a list or map 3 bytes plus 1 byte per element plus
  its elements (map keys counted like names); a set the sum of its elements.

Items are plain Python values as `boto3.dynamodb.types.TypeDeserializer` yields them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

MAX_ITEM_BYTES = 400 * 1024
MAX_PARTITION_KEY_BYTES = 2048
MAX_SORT_KEY_BYTES = 1024
DOCUMENT_OVERHEAD = 3  # a list or map, whatever it holds
ELEMENT_OVERHEAD = 1  # each element of a list or map
REASON_PREFIX = "target cannot hold it: "  # every reason starts so (counted apart in summaries)


@dataclass(frozen=True)
class KeyAttribute:
    name: str
    type: str  # S | N | B, from AttributeDefinitions
    role: str  # "table partition key", "index invoiceNum-index partition key", ...
    max_bytes: int
    required: bool  # the table's own keys; index keys may be absent (sparse index)


@dataclass(frozen=True)
class TargetShape:
    table: str
    keys: tuple[KeyAttribute, ...]


def shape_from_description(table: Mapping[str, Any]) -> TargetShape:
    """TargetShape from DescribeTable's `Table`: the table's keys, then each GSI's and LSI's."""
    types = {a["AttributeName"]: a["AttributeType"] for a in table.get("AttributeDefinitions", [])}
    keys: list[KeyAttribute] = []

    def add(schema: list[Mapping[str, Any]], owner: str, required: bool) -> None:
        for k in schema:
            name = k["AttributeName"]
            hash_key = k["KeyType"] == "HASH"
            keys.append(
                KeyAttribute(
                    name=name,
                    type=types.get(name, "S"),
                    role=f"{owner} {'partition' if hash_key else 'sort'} key",
                    max_bytes=MAX_PARTITION_KEY_BYTES if hash_key else MAX_SORT_KEY_BYTES,
                    required=required,
                )
            )

    add(table.get("KeySchema", []), "table", True)
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        for index in table.get(kind, []):
            add(index.get("KeySchema", []), f"index {index['IndexName']}", False)
    return TargetShape(str(table.get("TableName", "")), tuple(keys))


def dynamo_type(value: Any) -> str:
    """The DynamoDB type letter(s) a deserialised value is written as."""
    if isinstance(value, bool):
        return "BOOL"
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "S"
    if isinstance(value, (Decimal, int, float)):
        return "N"
    if isinstance(value, (bytes, bytearray)) or isinstance(getattr(value, "value", None), bytes):
        return "B"
    if isinstance(value, Mapping):
        return "M"
    if isinstance(value, (list, tuple)):
        return "L"
    if isinstance(value, (set, frozenset)):
        first = next(iter(value), "")
        return {"S": "SS", "N": "NS", "B": "BS"}.get(dynamo_type(first), "SS")
    return type(value).__name__


_TYPE_WORDS = {"S": "a string", "N": "a number", "B": "binary", "BOOL": "a boolean"}


def _type_word(letter: str) -> str:
    return _TYPE_WORDS.get(letter, f"of type {letter}")


def number_size(value: Decimal | int | float) -> int:
    """About 1 byte per 2 significant digits, + 1 byte, + 1 for a negative number."""
    d = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    sign, digits, _ = d.normalize().as_tuple()
    significant = len(digits) if any(digits) else 1
    return (significant + 1) // 2 + 1 + (1 if sign and any(digits) else 0)


def _bytes_len(value: Any) -> int:
    raw = value if isinstance(value, (bytes, bytearray)) else getattr(value, "value", b"")
    return len(raw)


def value_size(value: Any) -> int:
    """Bytes DynamoDB counts for one attribute value (without its name)."""
    kind = dynamo_type(value)
    if kind == "S":
        return len(value.encode("utf-8"))
    if kind == "N":
        return number_size(value)
    if kind == "B":
        return _bytes_len(value)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return DOCUMENT_OVERHEAD + sum(
            len(str(k).encode("utf-8")) + value_size(v) + ELEMENT_OVERHEAD for k, v in value.items()
        )
    if kind == "L":
        return DOCUMENT_OVERHEAD + sum(value_size(v) + ELEMENT_OVERHEAD for v in value)
    if kind in ("SS", "NS", "BS"):
        return sum(value_size(v) for v in value)
    return len(str(value).encode("utf-8"))


def item_size(item: Mapping[str, Any]) -> int:
    """The item's size by DynamoDB's count: names plus values."""
    return sum(len(str(k).encode("utf-8")) + value_size(v) for k, v in item.items())


def why_unfit(
    shape: TargetShape, item: Mapping[str, Any], item_bytes: int | None = None
) -> str | None:
    """Why the target table would reject the item, or None when it fits (`item_bytes`: its
    size when the caller has counted it already)."""
    for key in shape.keys:
        if key.name not in item:
            if key.required:
                return f"{REASON_PREFIX}{key.name} is missing; it is the {key.role}"
            continue
        value = item[key.name]
        got = dynamo_type(value)
        if got != key.type:
            return (
                f"{REASON_PREFIX}{key.name} is {_type_word(got)}; the {key.role} "
                f"({shape.table}) is declared {key.type}"
            )
        if key.type in ("S", "B"):
            size = value_size(value)
            if size == 0:
                return f"{REASON_PREFIX}{key.name} is empty; the {key.role} cannot be empty"
            if size > key.max_bytes:
                return (
                    f"{REASON_PREFIX}{key.name} is {size:,} bytes; the {key.role} holds at most "
                    f"{key.max_bytes:,}"
                )
    size = item_size(item) if item_bytes is None else item_bytes
    if size > MAX_ITEM_BYTES:
        return (
            f"{REASON_PREFIX}item size {size:,} bytes by DynamoDB's count; the limit is "
            f"{MAX_ITEM_BYTES:,} (400 KB)"
        )
    return None
