"""A recreated function's published versions and aliases, from its archive.

DeleteFunction deletes every version and alias. A restore publishes one version per archived
version, oldest first, from the recreated function: $LATEST takes the version's code (its own
package when the archive holds it, restore/function_code.py; else $LATEST's archived code, and
the log says so) and configuration, then is published; then $LATEST takes its own code and
configuration back, and each alias is created on the new numbers with its routing weights.
Versions get new numbers: the map old -> new is journaled (a cursor) after every publish, so a
resume never publishes one twice, and the event source mappings and permissions of a version
follow it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.actions.restore.common import MAX_SETTLE_SECONDS
from engine.actions.restore.function_code import VersionCode, put_code
from engine.actions.restore.function_spec import update_settings
from engine.actions.traffic.flags import publish, retry_conflicts, wait_updated
from engine.aws.resend import create_once
from engine.core.context import ActionContext

RuntimeFor = Callable[[str], str]  # an archived runtime -> the one a restore uses


def wait_active(ctx: ActionContext, lam: Any, fn: str, qualifier: str | None = None) -> None:
    """A new function (or version) is Pending until Lambda has set it up (waiter
    function_active_v2); AddPermission, PutFunctionConcurrency or CreateAlias before that
    fails with ResourceConflictException. moto is Active at once."""
    kwargs = {"FunctionName": fn, **({"Qualifier": qualifier} if qualifier else {})}
    what = f"{fn}:{qualifier}" if qualifier else fn
    waited = 0.0
    while True:
        conf = lam.get_function_configuration(**kwargs)
        state = conf.get("State") or "Active"
        if state == "Active" and conf.get("LastUpdateStatus") != "InProgress":
            return
        if state == "Failed":
            raise RuntimeError(f"{what}: creation failed: {conf.get('StateReason', '')}")
        if waited >= MAX_SETTLE_SECONDS:
            raise RuntimeError(f"{what}: still {state} after {waited:.0f}s")
        ctx.clock.sleep_real(1.0)
        waited += 1.0


def _published(lam: Any, fn: str) -> list[str]:
    versions = []
    for page in lam.get_paginator("list_versions_by_function").paginate(FunctionName=fn):
        versions += [v["Version"] for v in page["Versions"] if v["Version"] != "$LATEST"]
    return sorted(versions, key=int)


def _configure(
    ctx: ActionContext, lam: Any, fn: str, conf: dict[str, Any], runtime_for: RuntimeFor
) -> None:
    """Make $LATEST's settings those of `conf` (its environment stays: restored whole)."""
    settings = update_settings(conf)
    if settings.get("Runtime"):
        settings["Runtime"] = runtime_for(settings["Runtime"])
    wait_updated(ctx, lam, fn)
    retry_conflicts(
        ctx,
        lam,
        f"{fn}: configuration",
        lambda: lam.update_function_configuration(FunctionName=fn, **settings),
    )
    wait_updated(ctx, lam, fn)


def restore_versions(
    ctx: ActionContext,
    lam: Any,
    fn: str,
    record: dict[str, Any],
    folder: Path,
    version_map: dict[str, str],
    runtime_for: RuntimeFor,
) -> None:
    """Publish each archived version not yet in `version_map` (old -> new, updated in place
    and checkpointed after each): $LATEST takes the version's code and settings, then is
    published; once all are, $LATEST takes its own archived code and settings back (also on a
    resume that finds it on a version's code: a crash after the last publish). Versions the
    recreated function already has beyond the map were published before a crash that lost the
    journal's line: adopted, never published again. Lambda gives back the last version when
    nothing changed since (two archived versions that differ by nothing archived then share
    one new number)."""
    code = VersionCode(record, folder)
    pending = [v for v in record.get("versions", []) if v["Version"] not in version_map]
    for archived in pending:
        old = archived["Version"]
        unclaimed = [v for v in _published(lam, fn) if v not in version_map.values()]
        if unclaimed:
            version_map[old] = unclaimed[0]
        else:
            put_code(ctx, lam, fn, code, code.wanted(archived))
            _configure(ctx, lam, fn, archived, runtime_for)
            description = archived.get("Description") or f"restored version {old}"
            version_map[old] = publish(ctx, lam, fn, description)
        _log_published(ctx, lam, fn, archived, version_map[old], code)
        ctx.checkpoint(force=True)
    if record.get("versions"):  # also on a resume after the last publish: idempotent
        put_code(ctx, lam, fn, code, code.latest_sha)
        _configure(ctx, lam, fn, record.get("configuration", {}), runtime_for)


def _log_published(
    ctx: ActionContext, lam: Any, fn: str, archived: dict[str, Any], new: str, code: VersionCode
) -> None:
    old, sha = archived["Version"], archived.get("CodeSha256", "")
    got = lam.get_function_configuration(FunctionName=fn, Qualifier=new).get("CodeSha256", "")
    if sha and got != sha:
        ctx.log(
            f"{fn}: version {old} ran code {sha[:12]}...; version {new} has {got[:12]}... "
            f"instead: {code.why_other(archived)}",
            "warning",
        )
    own = " with its own code" if sha and got == sha and sha != code.latest_sha else ""
    ctx.log(f"{fn}: version {old} published again as {new}{own}")


def mapped_routing(
    routing: dict[str, Any], version_map: dict[str, str], primary: str
) -> dict[str, Any]:
    """An alias's RoutingConfig on the new version numbers; a weight whose version became the
    primary one is dropped (AWS refuses it)."""
    weights = {
        version_map.get(v, v): w
        for v, w in (routing.get("AdditionalVersionWeights") or {}).items()
        if version_map.get(v, v) != primary
    }
    return {"AdditionalVersionWeights": weights} if weights else {}


def restore_aliases(
    ctx: ActionContext, lam: Any, fn: str, record: dict[str, Any], version_map: dict[str, str]
) -> list[str]:
    """Create each archived alias on its version's new number (once the function is Active:
    the caller waits). An alias that exists is ours from before a crash: moved to what was
    archived if it differs. Returns the alias names."""
    names = []
    for alias in record.get("aliases", []):
        name, old = alias["Name"], alias["FunctionVersion"]
        version = version_map.get(old, old)  # "$LATEST" stays
        if version != "$LATEST":
            wait_active(ctx, lam, fn, version)  # an alias on a Pending version is refused
        routing = mapped_routing(alias.get("RoutingConfig") or {}, version_map, version)
        wanted: dict[str, Any] = {
            "FunctionName": fn,
            "Name": name,
            "FunctionVersion": version,
            "Description": alias.get("Description", ""),
            "RoutingConfig": routing,
        }
        live = _alias(lam, fn, name)
        what = f"{fn}: alias {name}"
        if live is None:
            create_once(
                lambda kw=wanted, w=what: retry_conflicts(
                    ctx, lam, w, lambda: lam.create_alias(**kw)
                ),
                lambda n=name: _alias(lam, fn, n),
            )
            ctx.log(f"{fn}: alias {name} -> version {version} (was {old})")
        elif live["FunctionVersion"] != version or (live.get("RoutingConfig") or {}) != routing:
            retry_conflicts(ctx, lam, what, lambda kw=wanted: lam.update_alias(**kw))
        names.append(name)
    return names


def _alias(lam: Any, fn: str, name: str) -> dict[str, Any] | None:
    try:
        return lam.get_alias(FunctionName=fn, Name=name)
    except lam.exceptions.ResourceNotFoundException:
        return None
