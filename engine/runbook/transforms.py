"""Pure item transforms and classifiers for the company-scoped migration (no I/O).

Items here are plain Python values as `boto3.dynamodb.types.TypeDeserializer` yields them:
str, Decimal, bool, None, bytes/Binary, set, list, dict.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from engine.runbook.model import EntitySpec

# Attributes the migration itself sets or drops: left out of the content checksum.
AUDIT_ATTRS = ("companyId", "userId", "createdBy", "createdAt", "updatedAt")
CREATED_BY = "createdBy"
CREATED_AT = "createdAt"
UPDATED_AT = "updatedAt"

_SLUG = re.compile(r"[^a-z0-9]+")


def orphan_company_id(prefix: str, user_id: str) -> str:
    """Deterministic companyId for an orphan user: prefix + readable slug + stable hash.

    The hash keeps two users whose slugs coincide (`Bob.X` / `bob-x`) apart.
    """
    slug = _SLUG.sub("-", user_id.lower()).strip("-")[:40] or "user"
    digest = hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:10]
    return f"{prefix}{slug}-{digest}"


def orphan_company_name(template: str, user_id: str) -> str:
    return template.replace("{user}", user_id)


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (Decimal, int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, list):
        return "list"
    if value is None:
        return "null"
    return type(value).__name__


def classify_legacy(entity: EntitySpec, item: Mapping[str, Any]) -> str | None:
    """Why a legacy item cannot be migrated, or None when it can."""
    user = item.get(entity.user_attr)
    if user is None:
        return f"missing {entity.user_attr}"
    if not isinstance(user, str) or not user:
        return f"{entity.user_attr} is not a non-empty string ({_kind_of(user)})"
    return classify_fields(entity, item)


def classify_fields(entity: EntitySpec, item: Mapping[str, Any]) -> str | None:
    """Id and required fields present with the declared types (shared by legacy and target)."""
    ident = item.get(entity.id_attr)
    if ident is None:
        return f"missing {entity.id_attr}"
    if not isinstance(ident, str) or not ident:
        return f"{entity.id_attr} is not a non-empty string ({_kind_of(ident)})"
    for attr, kind in entity.required.items():
        if attr not in item or item[attr] is None:
            return f"missing required {attr}"
        got = _kind_of(item[attr])
        if got != kind:
            return f"{attr} should be {kind}, is {got}"
    return None


def classify_target(entity: EntitySpec, item: Mapping[str, Any]) -> str | None:
    """Why a company-scoped item is malformed, or None."""
    for attr in (entity.company_attr, CREATED_BY, CREATED_AT, UPDATED_AT):
        if not isinstance(item.get(attr), str) or not item.get(attr):
            return f"missing or non-string {attr}"
    return classify_fields(entity, item)


def to_company_scoped(
    entity: EntitySpec, item: Mapping[str, Any], company_id: str, migration_ts: str
) -> dict[str, Any]:
    """The plan's schema transform: companyId added, userId becomes createdBy, audit stamps set.

    Every other attribute is preserved unchanged. Deterministic for a given migration_ts, so a
    re-run writes an identical item.
    """
    out = {k: v for k, v in item.items() if k != entity.user_attr}
    out[entity.company_attr] = company_id
    out[CREATED_BY] = item[entity.user_attr]
    created = item.get(CREATED_AT)
    out[CREATED_AT] = created if isinstance(created, str) and created else migration_ts
    out[UPDATED_AT] = migration_ts
    return out


def to_legacy(
    entity: EntitySpec, item: Mapping[str, Any], migration_ts: str | None = None
) -> dict[str, Any]:
    """Inverse transform (rollback re-sync): company-scoped item back to the legacy schema.

    createdBy becomes userId; companyId and the migration's stamps go. createdAt is kept unless
    it is the migration timestamp (a default the forward transform invented).
    """
    drop = {entity.company_attr, CREATED_BY, UPDATED_AT}
    out = {k: v for k, v in item.items() if k not in drop}
    out[entity.user_attr] = item[CREATED_BY]
    if migration_ts is not None and out.get(CREATED_AT) == migration_ts:
        del out[CREATED_AT]
    return out


def _canonical(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (Decimal, int, float)):
        d = Decimal(str(value)).normalize()
        return {"#n": format(d, "f") if d == d.to_integral_value() else str(d)}
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return {"#set": sorted(json.dumps(_canonical(v), sort_keys=True) for v in value)}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return {"#b": bytes(value).hex()}
    raw = getattr(value, "value", None)  # boto3 Binary
    if isinstance(raw, (bytes, bytearray)):
        return {"#b": bytes(raw).hex()}
    return {"#x": str(value)}


def canonical_json(item: Mapping[str, Any], exclude: tuple[str, ...] = ()) -> str:
    """Stable JSON of an item: sorted keys, numbers normalised (1.50 == 1.5), sets sorted."""
    body = {k: _canonical(v) for k, v in item.items() if k not in exclude}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def checksum_exclusions(entity: EntitySpec) -> tuple[str, ...]:
    """The entity's own tenant attributes (whatever they are named) plus the audit ones."""
    return tuple(dict.fromkeys((entity.user_attr, entity.company_attr, *AUDIT_ATTRS)))


def content_checksum(item: Mapping[str, Any], exclude: tuple[str, ...] = AUDIT_ATTRS) -> str:
    """Hash of an item's content without tenant/audit attributes: equal across the migration."""
    return hashlib.sha256(canonical_json(item, exclude).encode("utf-8")).hexdigest()


def is_newer(updated_at: Any, migration_ts: str) -> bool:
    """An application write after the run began (ISO-8601 UTC strings compare lexically)."""
    return isinstance(updated_at, str) and updated_at > migration_ts


def json_safe(value: Any) -> Any:
    """Plain JSON for artifacts (Decimal -> int/float string, sets -> sorted lists)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((json_safe(v) for v in value), key=str)
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    raw = getattr(value, "value", None)
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw).hex()
    return value


def dedupe_by_key(
    ranked: list[tuple[dict[str, Any], str]], key_names: list[str]
) -> list[dict[str, Any]]:
    """One item per key (a batch write may not name a key twice). Each item comes with a rank
    (e.g. its company-scoped twin's updatedAt): the greatest wins, the later one on a tie;
    first-seen order is kept."""
    chosen: dict[str, tuple[dict[str, Any], str]] = {}
    for item, rank in ranked:
        key = canonical_json({n: item.get(n) for n in key_names})
        held = chosen.get(key)
        if held is None or rank >= held[1]:
            chosen[key] = (item, rank)
    return [item for item, _ in chosen.values()]
