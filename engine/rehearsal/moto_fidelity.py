"""Bring the moto world closer to AWS where a rehearsal depends on it.

moto refuses an item above 405,000 bytes by its own count, which leaves out list and map
overheads; AWS refuses one above 400 KB (409,600 bytes) by DynamoDB's rules. A real account can
hold a legacy item of 409,000 bytes that passes the limit only once company-scoped; moto could
not even hold it. `aws_item_size_limit()` makes moto count and refuse as DynamoDB does, in this
process (the embedded server and the suite call it at start). `aws_transactions()` and
`aws_scan_pages()` make transactions and Scan pages cost what they cost on AWS (the embedded
server and the suite). `aws_lambda_rules()` makes Lambda refuse reserved `aws:` tags and keep a
RevisionId per function, refusing a stale one, as AWS does; `aws_blocked_runtimes()` makes
CreateFunction refuse a runtime AWS blocks creates on. Each patch relies on moto's
internals as pinned in requirements.lock; engine/rehearsal/moto_contract.py checks them, and
refuses a moto that changed (docs/moto.md). The step-functions backend's patches (exports,
state machines): engine/rehearsal/moto_fidelity_sfn.py.
"""

from __future__ import annotations

import base64
import functools
import json
import threading
import uuid
from typing import Any

from moto.awslambda.exceptions import (
    InvalidParameterValueException,
    PreconditionFailedException,
)
from moto.awslambda.models import LambdaBackend, LambdaFunction
from moto.awslambda.responses import LambdaResponse
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ItemSizeTooLarge,
    MultipleTransactionsException,
    TransactionCanceledException,
)
from moto.dynamodb.models import DynamoDBBackend, dynamo_type
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

from engine.rehearsal.stack_header import RESERVED_TAG_MESSAGE, STACK_HEADER

AWS_ITEM_LIMIT_BYTES = 400 * 1024


def aws_item_size(value: Any) -> int:
    """A moto DynamoType's size as DynamoDB counts it: moto's own count for scalars and sets
    (numbers by significant digits, checked by engine/rehearsal/moto_contract.py), plus what moto
    leaves out: 3 bytes per list or map and 1 per element, and binary by its bytes, not base64."""
    if value.is_list():
        return 3 + sum(1 + aws_item_size(v) for v in value.value)
    if value.is_map():
        return 3 + sum(1 + len(k.encode()) + aws_item_size(v) for k, v in value.value.items())
    if value.type == "B" and isinstance(value.value, str):
        return len(base64.b64decode(value.value))
    return int(value.size())


def aws_item_size_limit(limit: int = AWS_ITEM_LIMIT_BYTES) -> bool:
    """Make moto refuse an item exactly where DynamoDB does: over `limit` (400 KB) by
    DynamoDB's count. False when this moto has no such check."""
    limited = getattr(dynamo_type, "LimitedSizeDict", None)
    if limited is None:
        return False
    if getattr(limited, "_runbook_limit", None) == limit:
        return True
    dynamo_cls = dynamo_type.DynamoType

    def _size(value: Any) -> int:
        if type(value) is dynamo_cls:
            return aws_item_size(value)
        return len(str(value).encode())

    @functools.wraps(limited.__setitem__)  # moto's own stays reachable (engine/moto_contract)
    def __setitem__(self: dict[str, Any], key: str, value: Any) -> None:
        current = sum(len(k.encode()) + _size(v) for k, v in self.items() if k != key)
        if current + len(key.encode()) + _size(value) > limit:
            raise ItemSizeTooLarge
        dict.__setitem__(self, key, value)

    limited.__setitem__ = __setitem__
    limited._runbook_limit = limit
    return True


def aws_transactions() -> bool:
    """Make moto's TransactWriteItems isolated and cheap, as AWS's are.

    moto deep-copies every table a transaction touches (its rollback copy): O(table) per
    transaction, and a write landing during the copy fails it ("dictionary changed size during
    iteration"). Here one lock serialises moto's item writes with transactions, and a
    transaction of Puts and ConditionChecks checks every condition first, then writes, undoing
    its own writes if one is refused: O(transaction). Other transactions keep moto's path."""
    if getattr(DynamoDBBackend, "_runbook_transactions", False):
        return True
    lock = threading.RLock()  # a transaction's own puts take it again

    def serialised(method: Any) -> Any:
        @functools.wraps(method)
        def locked(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(*args, **kwargs)

        return locked

    moto_transact = DynamoDBBackend.transact_write_items

    @functools.wraps(moto_transact)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        ops = [next(iter(entry.items())) for entry in transact_items if len(entry) == 1]
        plain = len(ops) == len(transact_items) <= 100
        if not plain or any(kind not in ("Put", "ConditionCheck") for kind, _ in ops):
            return moto_transact(self, transact_items)
        _checked_transaction(self, ops)

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        setattr(DynamoDBBackend, name, serialised(getattr(DynamoDBBackend, name)))
    DynamoDBBackend._runbook_transactions = True  # type: ignore[attr-defined]
    return True


def aws_scan_pages() -> bool:
    """Make a moto Scan page cost about a page, as AWS's does, not a walk of the whole table.

    For every Scan page moto sorts all items of the table, then walks them from the first to
    the page's start key: seconds per page at 100,000 items, starving the writes that share its
    core (a page timed out). Here the sorted order and each key's place in it are kept per
    table, rebuilt only after a put or delete (an update changes an item in place, never its
    key), and a page starts its walk at its start key."""
    if getattr(Table, "_runbook_sorted_order", False):
        return True
    moto_all_items, moto_scan = Table.all_items, Table.scan
    scanning = threading.local()  # the start key of the Scan this thread is answering

    def changes_order(method: Any) -> Any:
        @functools.wraps(method)
        def bump(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            finally:  # after the write: a sort that raced it is stored under the old version
                self._runbook_version = getattr(self, "_runbook_version", 0) + 1

        return bump

    def ordered(self: Any) -> tuple[list[Any], dict[Any, int]]:
        version = getattr(self, "_runbook_version", 0)
        cached = getattr(self, "_runbook_order", None)
        if cached is None or cached[0] != version or cached[1] is not self.items:
            items = moto_all_items(self)
            places = {(i.hash_key, i.range_key): n for n, i in enumerate(items)}
            cached = (version, self.items, items, places)
            self._runbook_order = cached  # a write during the sort bumps the version: rebuilt
        return cached[2], cached[3]

    @functools.wraps(moto_all_items)
    def all_items(self: Any) -> list[Any]:
        items, places = ordered(self)
        start_key = getattr(scanning, "start_key", None)
        if getattr(scanning, "table", None) is self and start_key:
            try:
                hash_value = DynamoType(start_key[self.hash_key_attr])
                range_attr = self.range_key_attr
                range_value = DynamoType(start_key[range_attr]) if range_attr else None
                place = places.get((hash_value, range_value))
            except (KeyError, TypeError):
                place = None  # moto's own walk reports a malformed key
            if place is not None:  # moto skips the start key itself, as before
                return items[place:]
        return list(items)

    @functools.wraps(moto_scan)
    def scan(self: Any, filters: Any, limit: Any, exclusive_start_key: Any, *a: Any, **k: Any):
        scanning.table, scanning.start_key = self, exclusive_start_key
        try:
            return moto_scan(self, filters, limit, exclusive_start_key, *a, **k)
        finally:
            scanning.table = scanning.start_key = None

    Table.put_item = changes_order(Table.put_item)  # type: ignore[method-assign]
    Table.delete_item = changes_order(Table.delete_item)  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]
    Table.scan = scan  # type: ignore[method-assign]
    Table._runbook_sorted_order = True  # type: ignore[attr-defined]
    return True


def aws_lambda_rules() -> bool:
    """Make moto's Lambda refuse what AWS refuses, where a rollback depends on it.

    - Tag keys starting with `aws:` (any case) are reserved: CreateFunction and TagResource
      refuse them (InvalidParameterValueException), unless the request carries STACK_HEADER,
      which only the rehearsal seed sends in place of CloudFormation (which sets them on AWS).
    - A function has a RevisionId that changes with each configuration or code update;
      GetFunction(Configuration) returns it, and UpdateFunctionConfiguration with another one
      fails with PreconditionFailedException (moto returns none and accepts any)."""
    if getattr(LambdaResponse, "_runbook_lambda_rules", False):
        return True

    def refuse_reserved(method: Any) -> Any:
        @functools.wraps(method)
        def checked(self: Any, *args: Any, **kwargs: Any) -> Any:
            tags = json.loads(self.body or "{}").get("Tags") or {}
            headers = self.headers or {}  # werkzeug's: case-insensitive
            stack = bool(headers.get(STACK_HEADER) or headers.get(STACK_HEADER.title()))
            if not stack and any(str(k).lower().startswith("aws:") for k in tags):
                raise InvalidParameterValueException(RESERVED_TAG_MESSAGE)
            return method(self, *args, **kwargs)

        return checked

    def revision(fn: Any) -> str:
        if getattr(fn, "_runbook_revision", None) is None:
            fn._runbook_revision = str(uuid.uuid4())
        return str(fn._runbook_revision)

    def revised(method: Any) -> Any:
        @functools.wraps(method)
        def bump(self: Any, *args: Any, **kwargs: Any) -> Any:
            self._runbook_revision = str(uuid.uuid4())
            return method(self, *args, **kwargs)

        return bump

    moto_configuration = LambdaFunction.get_configuration

    @functools.wraps(moto_configuration)
    def get_configuration(self: Any, on_create: bool = False) -> dict[str, Any]:
        config = moto_configuration(self, on_create)
        config["RevisionId"] = revision(self)
        return config

    moto_update = LambdaBackend.update_function_configuration

    @functools.wraps(moto_update)
    def update_function_configuration(
        self: Any, function_name: str, qualifier: str, body: dict[str, Any]
    ) -> Any:
        wanted = body.get("RevisionId")
        if wanted and wanted != revision(self.get_function(function_name, qualifier)):
            raise PreconditionFailedException(
                "The Revision Id provided does not match the latest Revision Id. "
                "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
            )
        return moto_update(self, function_name, qualifier, body)

    LambdaResponse.create_function = refuse_reserved(LambdaResponse.create_function)  # type: ignore[method-assign]
    LambdaResponse.tag_resource = refuse_reserved(LambdaResponse.tag_resource)  # type: ignore[method-assign]
    LambdaFunction.get_configuration = get_configuration  # type: ignore[method-assign]
    LambdaFunction.update_configuration = revised(LambdaFunction.update_configuration)  # type: ignore[method-assign]
    LambdaFunction.update_function_code = revised(LambdaFunction.update_function_code)  # type: ignore[method-assign]
    LambdaBackend.update_function_configuration = update_function_configuration  # type: ignore[method-assign]
    LambdaResponse._runbook_lambda_rules = True  # type: ignore[attr-defined]
    return True


def blocked_runtime_message(runtime: str) -> str:
    """AWS's answer to CreateFunction on a runtime it blocks creates on."""
    return (
        f"The runtime parameter of {runtime} is no longer supported for creating or updating "
        "AWS Lambda functions. We recommend you use a supported runtime while creating or "
        "updating functions."
    )


def aws_blocked_runtimes(blocked: frozenset[str]) -> bool:
    """Make moto's CreateFunction refuse a runtime AWS blocks creates on
    (InvalidParameterValueException, as AWS), unless the request carries STACK_HEADER: the
    rehearsal seed stands in for history (the function was created before the block).
    `blocked` comes from the runbook's `[[lambda_runtimes]]` (engine/runbook/runtimes.py);
    a later call replaces the set."""
    LambdaResponse._runbook_blocked_runtimes = frozenset(blocked)  # type: ignore[attr-defined]
    if getattr(LambdaResponse, "_runbook_runtime_rule", False):
        return True

    def refuse_blocked(method: Any) -> Any:
        @functools.wraps(method)
        def checked(self: Any, *args: Any, **kwargs: Any) -> Any:
            runtime = json.loads(self.body or "{}").get("Runtime") or ""
            headers = self.headers or {}
            stack = bool(headers.get(STACK_HEADER) or headers.get(STACK_HEADER.title()))
            if not stack and runtime in LambdaResponse._runbook_blocked_runtimes:
                raise InvalidParameterValueException(blocked_runtime_message(runtime))
            return method(self, *args, **kwargs)

        return checked

    LambdaResponse.create_function = refuse_blocked(LambdaResponse.create_function)  # type: ignore[method-assign]
    LambdaResponse._runbook_runtime_rule = True  # type: ignore[attr-defined]
    return True


def _op_key(backend: Any, kind: str, op: dict[str, Any]) -> dict[str, Any]:
    if kind != "Put":
        return dict(op["Key"])
    table = backend.get_table(op["TableName"])
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key


def _checked_transaction(backend: Any, ops: list[tuple[str, dict[str, Any]]]) -> None:
    """Puts and ConditionChecks, all or nothing (the caller holds the write lock)."""
    seen: set[tuple[str, str]] = set()
    reasons: list[Any] = []
    for kind, op in ops:
        key = _op_key(backend, kind, op)
        ident = (op["TableName"], json.dumps(key, sort_keys=True))
        if ident in seen:
            raise MultipleTransactionsException()
        seen.add(ident)
        current = backend.get_item(op["TableName"], key)
        condition = op.get("ConditionExpression")
        names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
        if condition is None or get_filter_expression(condition, names, values).expr(current):
            reasons.append((None, None, None))
            continue
        wanted = op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
        old = current.to_json()["Attributes"] if current is not None and wanted else None
        reasons.append(("ConditionalCheckFailed", "The conditional request failed", old))
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)
    applied: list[tuple[str, dict[str, Any], Any]] = []
    try:
        for kind, op in ops:
            if kind == "Put":
                key = _op_key(backend, kind, op)
                before = backend.get_item(op["TableName"], key)
                backend.put_item(op["TableName"], op["Item"])
                applied.append((op["TableName"], key, before))
    except Exception:
        for table, key, before in reversed(applied):  # all or nothing
            if before is None:
                backend.delete_item(table, key)
            else:
                backend.put_item(table, before.to_json()["Attributes"])
        raise
