"""What points at a recreated function, from its archive: the resource policy's statements
(per qualifier: the function's own and each alias's), the function URLs, and the event source
mappings (created again on the source as it is now: a restored table has a new stream ARN).
A URL config or mapping already there is compared with the archive and updated where it
differs (restore/existing_links.py)."""

from __future__ import annotations

import json
from typing import Any

from engine.actions.restore.existing_links import sync_mapping, sync_url
from engine.actions.restore.function_spec import qualifier_of, stream_table
from engine.actions.traffic.flags import retry_conflicts
from engine.aws.event_source_mappings import MAPPING_SETTINGS, archived_enabled
from engine.aws.resend import create_once
from engine.core.context import ActionContext


def _qualified(kwargs: dict[str, Any], qualifier: str | None) -> dict[str, Any]:
    return {**kwargs, "Qualifier": qualifier} if qualifier else kwargs


def statement_ids(lam: Any, fn: str, qualifier: str | None) -> set[str]:
    try:
        got = lam.get_policy(**_qualified({"FunctionName": fn}, qualifier))
    except lam.exceptions.ResourceNotFoundException:
        return set()
    return {st.get("Sid", "") for st in json.loads(got["Policy"]).get("Statement", [])}


def archived_statements(
    record: dict[str, Any], version_map: dict[str, str]
) -> list[tuple[str | None, dict[str, Any]]]:
    """(qualifier, statement) once each, the qualifier read from the statement's Resource
    (a version's number mapped to its new one)."""
    policies = record.get("policies") or {"": record.get("policy") or {}}
    seen: set[tuple[str | None, str]] = set()
    out = []
    for policy in policies.values():
        for st in policy.get("Statement", []):
            qualifier = qualifier_of(str(st.get("Resource", "")))
            qualifier = version_map.get(qualifier, qualifier) if qualifier else None
            if (qualifier, st.get("Sid", "")) not in seen:
                seen.add((qualifier, st.get("Sid", "")))
                out.append((qualifier, st))
    return out


def permission_request(fn: str, st: dict[str, Any], qualifier: str | None) -> dict[str, Any]:
    """AddPermission's arguments for one archived statement."""
    principal = st.get("Principal", {})
    if isinstance(principal, dict):
        principal = principal.get("Service") or principal.get("AWS") or ""
    kwargs: dict[str, Any] = {
        "FunctionName": fn,
        "StatementId": st.get("Sid", "restored"),
        "Action": st.get("Action", "lambda:InvokeFunction"),
        "Principal": principal,
    }
    condition = st.get("Condition", {}) or {}
    source = (condition.get("ArnLike", {}) or {}).get("AWS:SourceArn")
    equals = condition.get("StringEquals", {}) or {}
    if source:
        kwargs["SourceArn"] = source
    if equals.get("AWS:SourceAccount"):
        kwargs["SourceAccount"] = equals["AWS:SourceAccount"]
    if equals.get("aws:PrincipalOrgID"):
        kwargs["PrincipalOrgID"] = equals["aws:PrincipalOrgID"]
    if equals.get("lambda:FunctionUrlAuthType"):
        kwargs["FunctionUrlAuthType"] = equals["lambda:FunctionUrlAuthType"]
    return _qualified(kwargs, qualifier)


def restore_permissions(
    ctx: ActionContext, lam: Any, fn: str, record: dict[str, Any], version_map: dict[str, str]
) -> int:
    """Add each archived statement that is not there; a ResourceConflictException means the
    function is busy (retried), never "already there": presence is read from the policy."""
    added = 0
    for qualifier, st in archived_statements(record, version_map):
        kwargs = permission_request(fn, st, qualifier)
        sid = kwargs["StatementId"]
        if sid in statement_ids(lam, fn, qualifier):
            continue
        create_once(
            lambda kw=kwargs: retry_conflicts(
                ctx, lam, f"{fn}: add permission", lambda: lam.add_permission(**kw)
            ),
            lambda s=sid, q=qualifier: s if s in statement_ids(lam, fn, q) else None,
        )
        added += 1
    return added


def _url(lam: Any, fn: str, qualifier: str | None) -> dict[str, Any] | None:
    try:
        return lam.get_function_url_config(**_qualified({"FunctionName": fn}, qualifier))
    except lam.exceptions.ResourceNotFoundException:
        return None


def restore_urls(ctx: ActionContext, lam: Any, fn: str, record: dict[str, Any]) -> dict[str, str]:
    """Create each archived function URL; AWS gives a new URL (the old one is gone for good:
    clients must be told). One already there is made like the archived one
    (restore/existing_links.py). Returns {"fn[:qualifier]": new URL}."""
    out = {}
    for qualifier, url in (record.get("urls") or {}).items():
        q = qualifier or None
        where = f"{fn}:{q}" if q else fn
        kwargs = _qualified({"FunctionName": fn, "AuthType": url["AuthType"]}, q)
        kwargs.update({k: url[k] for k in ("Cors", "InvokeMode") if url.get(k)})
        live = _url(lam, fn, q)
        if live is not None:
            live = sync_url(ctx, lam, where, _qualified({"FunctionName": fn}, q), url, live)
        else:
            live = create_once(
                lambda kw=kwargs: retry_conflicts(
                    ctx, lam, f"{fn}: function URL", lambda: lam.create_function_url_config(**kw)
                ),
                lambda q=q: _url(lam, fn, q),
            )
        out[where] = live["FunctionUrl"]
        if live["FunctionUrl"] != url.get("FunctionUrl"):
            ctx.log(
                f"{where}: function URL is now {live['FunctionUrl']} (was "
                f"{url.get('FunctionUrl')}): AWS never gives an old URL back; tell its clients",
                "warning",
            )
    return out


def current_source(ddb: Any, source: str) -> str:
    """The event source as it is now: a DynamoDB stream is its table's latest stream (a
    restored table has a new one); anything else as archived."""
    table = stream_table(source)
    if table is None:
        return source
    try:
        desc = ddb.describe_table(TableName=table)["Table"]
    except ddb.exceptions.ResourceNotFoundException as exc:
        raise RuntimeError(
            f"{source}: its table {table} does not exist; restore it first (restore_tables)"
        ) from exc
    latest = desc.get("LatestStreamArn")
    if not latest or not (desc.get("StreamSpecification") or {}).get("StreamEnabled"):
        raise RuntimeError(f"{table} has no stream enabled; the mapping cannot read it")
    return str(latest)


def mapping_request(m: dict[str, Any], function: str, source: str) -> dict[str, Any]:
    kwargs = {"EventSourceArn": source, "FunctionName": function}
    kwargs.update({k: m[k] for k in MAPPING_SETTINGS if m.get(k) not in (None, {}, [])})
    if stream_table(source) and "StartingPosition" not in kwargs:
        kwargs["StartingPosition"] = "LATEST"  # a stream mapping needs one
    kwargs["Enabled"] = archived_enabled(m.get("State"))
    return kwargs


def find_mapping(lam: Any, source: str, function: str) -> dict[str, Any] | None:
    """The mapping of `function` on `source`, if there is one."""
    found = lam.list_event_source_mappings(EventSourceArn=source, FunctionName=function)
    return next(iter(found.get("EventSourceMappings", [])), None)


def mapping_target(fn: str, m: dict[str, Any], version_map: dict[str, str]) -> str:
    qualifier = qualifier_of(str(m.get("FunctionArn", "")))
    qualifier = version_map.get(qualifier, qualifier) if qualifier else None
    return f"{fn}:{qualifier}" if qualifier else fn


def restore_mappings(
    ctx: ActionContext,
    lam: Any,
    fn: str,
    record: dict[str, Any],
    version_map: dict[str, str],
    done: dict[str, str],
) -> None:
    """Create each archived mapping again (`done`: old UUID -> new, updated in place); one
    already there is made like the archived one (restore/existing_links.py)."""
    ddb = ctx.client("dynamodb")
    for m in record.get("mappings", []):
        if m["UUID"] in done:
            continue
        source = current_source(ddb, m["EventSourceArn"])
        target = mapping_target(fn, m, version_map)
        kwargs = mapping_request(m, target, source)
        what = f"{fn}: event source mapping"
        found = find_mapping(lam, source, target)
        made = (found and sync_mapping(ctx, lam, m, found, target)) or create_once(
            lambda kw=kwargs, w=what: retry_conflicts(
                ctx, lam, w, lambda: lam.create_event_source_mapping(**kw)
            ),
            lambda s=source, t=target: find_mapping(lam, s, t),
        )
        done[m["UUID"]] = made["UUID"]
        moved = "" if source == m["EventSourceArn"] else f" (was {m['EventSourceArn']})"
        ctx.log(f"{target}: event source mapping on {source}{moved}")
        ctx.checkpoint(force=True)
