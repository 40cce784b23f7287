"""A function URL or event source mapping a restore finds already there (a resume after a
crash, or someone made it again) is compared with the archive, not taken as it is: what differs
and can be changed is updated to the archived settings, and the log says what changed.

- Function URL: AuthType, Cors and InvokeMode (UpdateFunctionUrlConfig). An AuthType change is
  a warning: it decides who may invoke the function without credentials.
- Event source mapping: the archived settings (MAPPING_SETTINGS) and Enabled/State
  (UpdateEventSourceMapping). StartingPosition (and EventSourceArn) cannot be updated: a
  difference is logged and kept. A mapping in a transitional state (Creating, Enabling,
  Disabling, Updating) is waited for first: AWS refuses to update it (ResourceInUseException).
"""

from __future__ import annotations

from typing import Any

from engine.actions.restore.common import MAX_SETTLE_SECONDS, retry_not_yet
from engine.actions.traffic.flags import retry_conflicts
from engine.aws.event_source_mappings import MAPPING_SETTINGS, archived_enabled
from engine.core.context import ActionContext

POLL_SECONDS = 2.0
TRANSITIONAL = ("Creating", "Enabling", "Disabling", "Updating")
_NOT_UPDATABLE = ("StartingPosition",)  # UpdateEventSourceMappingRequest has no such member


def _present(value: Any) -> bool:
    return value not in (None, "", [], {})


# --- function URLs ------------------------------------------------------------------------------


def url_changes(archived: dict[str, Any], live: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """{setting: (live, archived)} of the URL settings that differ. An archive keeps only set
    values: no Cors there is no CORS; InvokeMode is compared only when archived."""
    changes: dict[str, tuple[Any, Any]] = {}
    if live.get("AuthType") != archived["AuthType"]:
        changes["AuthType"] = (live.get("AuthType"), archived["AuthType"])
    if (live.get("Cors") or {}) != (archived.get("Cors") or {}):
        changes["Cors"] = (live.get("Cors") or {}, archived.get("Cors") or {})
    mode = archived.get("InvokeMode")
    if mode and live.get("InvokeMode") != mode:
        changes["InvokeMode"] = (live.get("InvokeMode"), mode)
    return changes


def sync_url(
    ctx: ActionContext,
    lam: Any,
    where: str,
    request: dict[str, Any],
    archived: dict[str, Any],
    live: dict[str, Any],
) -> dict[str, Any]:
    """An existing function URL config made like the archived one; returns it as it is now.
    `request`: FunctionName and Qualifier of the URL."""
    changes = url_changes(archived, live)
    if not changes:
        return live
    update = {**request, **{k: wanted for k, (_, wanted) in changes.items()}}
    updated = retry_conflicts(
        ctx, lam, f"{where}: function URL", lambda: lam.update_function_url_config(**update)
    )
    for key, (was, wanted) in changes.items():
        if key == "AuthType":
            ctx.log(
                f"{where}: function URL AuthType {was} -> {wanted} (who may invoke it without "
                "credentials: check this was not a deliberate change)",
                "warning",
            )
        else:
            ctx.log(f"{where}: function URL {key} {was} -> {wanted}")
    return {**live, **updated}


# --- event source mappings ----------------------------------------------------------------------


def settled_mapping(ctx: ActionContext, lam: Any, uuid: str, what: str) -> dict[str, Any] | None:
    """The mapping once it is out of a transitional state; None when it was being deleted
    (and is gone). moto is never transitional: this follows AWS's contract."""
    waited = 0.0
    while True:
        try:
            live: dict[str, Any] = lam.get_event_source_mapping(UUID=uuid)
        except lam.exceptions.ResourceNotFoundException:
            return None
        state = live.get("State") or "Enabled"
        if state not in (*TRANSITIONAL, "Deleting"):
            return live
        if waited >= MAX_SETTLE_SECONDS:
            raise RuntimeError(f"{what}: event source mapping {uuid} still {state}")
        ctx.clock.sleep_real(POLL_SECONDS)
        waited += POLL_SECONDS


def mapping_changes(archived: dict[str, Any], live: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """{setting: (live, archived)} of what differs: the settings the archive has (it keeps
    only those set), and Enabled."""
    changes: dict[str, tuple[Any, Any]] = {
        k: (live.get(k), archived[k])
        for k in MAPPING_SETTINGS
        if _present(archived.get(k)) and live.get(k) != archived[k]
    }
    enabled = archived_enabled(archived.get("State"))
    if (live.get("State") == "Enabled") != enabled:
        changes["Enabled"] = (live.get("State") == "Enabled", enabled)
    return changes


def sync_mapping(
    ctx: ActionContext, lam: Any, archived: dict[str, Any], found: dict[str, Any], what: str
) -> dict[str, Any] | None:
    """An existing mapping made like the archived one (once settled); returns it as it is now,
    None when it was being deleted (the caller creates it again)."""
    live = settled_mapping(ctx, lam, found["UUID"], what)
    if live is None:
        return None
    changes = mapping_changes(archived, live)
    kept = {k: v for k, v in changes.items() if k in _NOT_UPDATABLE}
    update = {k: wanted for k, (_, wanted) in changes.items() if k not in _NOT_UPDATABLE}
    for key, (was, wanted) in kept.items():
        ctx.log(f"{what}: {key} is {was}, archived {wanted}: AWS cannot change it; kept", "warning")
    if not update:
        return live
    retry_not_yet(  # a state change between the read and the update: AWS says "in use"
        ctx,
        f"{what}: update event source mapping",
        lambda: lam.update_event_source_mapping(UUID=live["UUID"], **update),
        (lam.exceptions.ResourceInUseException, lam.exceptions.ResourceConflictException),
    )
    for key in update:
        was, wanted = changes[key]
        ctx.log(f"{what}: event source mapping {live['UUID']} {key} {was} -> {wanted}")
    return {**live, **update}
