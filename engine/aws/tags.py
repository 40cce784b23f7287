"""Tags a user may assign. Keys starting with `aws:` (any case) are reserved: CloudFormation and
SAM set them on every stack resource, and Lambda's TagResource/CreateFunction and DynamoDB's
TagResource refuse them from anyone else. An archive keeps every tag as found; a restore
assigns only the user's."""

from __future__ import annotations

from typing import Any

RESERVED_PREFIX = "aws:"


def is_reserved(key: str) -> bool:
    return key.lower().startswith(RESERVED_PREFIX)


def user_tags(tags: dict[str, str] | None) -> tuple[dict[str, str], list[str]]:
    """A Lambda tag map without reserved keys, and the keys dropped (sorted)."""
    tags = tags or {}
    return {k: v for k, v in tags.items() if not is_reserved(k)}, sorted(
        k for k in tags if is_reserved(k)
    )


def user_tag_list(tags: list[dict[str, Any]] | None) -> tuple[list[dict[str, Any]], list[str]]:
    """A DynamoDB tag list ([{Key, Value}]) without reserved keys, and the keys dropped."""
    tags = tags or []
    return [t for t in tags if not is_reserved(t["Key"])], sorted(
        t["Key"] for t in tags if is_reserved(t["Key"])
    )
