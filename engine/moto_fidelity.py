"""Bring the moto world closer to AWS where a rehearsal depends on it.

moto refuses an item above 405,000 bytes by its own count; AWS accepts up to 400 KB
(409,600 bytes) by DynamoDB's rules. A real account can therefore hold a legacy item of, say,
409,000 bytes that passes the limit only once company-scoped; moto could not even hold it.
`aws_item_size_limit()` moves moto's limit to AWS's, in this process (the embedded server calls
it at start; tests that need it call it too).
"""

from __future__ import annotations

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
