"""Bring the moto world closer to AWS where a rehearsal depends on it.

moto refuses an item above 405,000 bytes by its own count; AWS accepts up to 400 KB
(409,600 bytes) by DynamoDB's rules. A real account can therefore hold a legacy item of, say,
409,000 bytes that passes the limit only once company-scoped; moto could not even hold it.
`aws_item_size_limit()` moves moto's limit to AWS's, in this process (the embedded server calls
it at start; tests that need it call it too).
"""

from __future__ import annotations

import functools
import threading
from typing import Any

AWS_ITEM_LIMIT_BYTES = 400 * 1024


def aws_item_size_limit(limit: int = AWS_ITEM_LIMIT_BYTES) -> bool:
    """Patch moto's item size check to `limit`; False when this moto has no such check."""
    try:
        from moto.dynamodb.exceptions import ItemSizeTooLarge
        from moto.dynamodb.models import dynamo_type
    except ImportError:
        return False
    limited = getattr(dynamo_type, "LimitedSizeDict", None)
    if limited is None:
        return False
    dynamo_cls = dynamo_type.DynamoType
    bytesize = dynamo_type.bytesize

    def _size(value: Any) -> int:
        return value.size() if type(value) is dynamo_cls else bytesize(str(value))

    def __setitem__(self: dict[str, Any], key: str, value: Any) -> None:
        current = sum(bytesize(k) + _size(v) for k, v in self.items() if k != key)
        if current + bytesize(key) + _size(value) > limit:
            raise ItemSizeTooLarge
        dict.__setitem__(self, key, value)

    limited.__setitem__ = __setitem__
    return True


def serial_transactions() -> bool:
    """Make moto's TransactWriteItems isolated from concurrent writes, as AWS's are.

    moto deep-copies the table at the start of a transaction (its rollback copy); a PutItem or
    another transaction landing in that instant changes the dict being copied and fails the
    request ("dictionary changed size during iteration"). One lock around moto's item writes
    serialises them with transactions. False when this moto has no such backend."""
    try:
        from moto.dynamodb.models import DynamoDBBackend
    except ImportError:
        return False
    if getattr(DynamoDBBackend, "_runbook_serial_writes", False):
        return True
    lock = threading.RLock()  # a transaction's own puts take it again

    def serialised(method: Any) -> Any:
        @functools.wraps(method)
        def locked(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(*args, **kwargs)

        return locked

    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        if hasattr(DynamoDBBackend, name):
            setattr(DynamoDBBackend, name, serialised(getattr(DynamoDBBackend, name)))
    DynamoDBBackend._runbook_serial_writes = True  # type: ignore[attr-defined]
    return True
