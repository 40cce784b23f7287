"""Feature flags as Lambda environment variables: set (journaling priors) and restore.

update_function_configuration replaces the whole environment, so every change is a merge with
the function's current variables. Only flag names (runbook.flags.names()) and their values are
ever journaled, logged or returned; other variables may hold secrets and are never read out.

Cursor format of a set_flags / shift_reads step (restore_flags relies on it):

    [steps.<id>.cursors.flags."<function>"]
    version = "3"                 # published before the change (code + config to revert to)
    prior = { DUAL_WRITE_ENABLED = "false" }   # flag values before the change
    absent = ["READ_PERCENT"]     # flags that were not set before the change
    applied = true                # the change is in place
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.context import Action, ActionContext, PlannedCall
from engine.model import Runbook

POLL_SECONDS = 1.0
MAX_UPDATE_WAIT_SECONDS = 300.0
ABSENT = object()


class FlagError(Exception):
    """A flag change was asked for that the runbook does not allow."""


def resolve_functions(rb: Runbook, selectors: list[str] | None) -> list[str]:
    """Selectors in order, de-duplicated; None means the runbook's flag rollout order."""
    if selectors is None:
        return list(rb.flags.functions)
    out: list[str] = []
    for selector in selectors:
        out += [f for f in rb.inventory.select_functions(selector) if f not in out]
    return out


def check_flag_names(rb: Runbook, names: list[str]) -> None:
    unknown = sorted(set(names) - set(rb.flags.names()))
    if unknown:
        raise FlagError(
            f"not flag variables of this runbook: {', '.join(unknown)} "
            f"(flags: {', '.join(rb.flags.names())})"
        )


def _env(lam: Any, fn: str) -> dict[str, str]:
    conf = lam.get_function_configuration(FunctionName=fn)
    return dict(conf.get("Environment", {}).get("Variables", {}) or {})


def _wait_updated(ctx: ActionContext, lam: Any, fn: str) -> None:
    """Wait until a configuration update has settled (AWS applies it asynchronously)."""
    waited = 0.0
    while True:
        conf = lam.get_function_configuration(FunctionName=fn)
        status = conf.get("LastUpdateStatus") or "Successful"
        if status != "InProgress" and conf.get("State", "Active") != "Pending":
            if status == "Failed":
                raise RuntimeError(
                    f"{fn}: configuration update failed: {conf.get('LastUpdateStatusReason', '')}"
                )
            return
        if waited > MAX_UPDATE_WAIT_SECONDS:
            raise RuntimeError(f"{fn}: configuration update still in progress after {waited:.0f}s")
        ctx.clock.sleep_real(POLL_SECONDS)
        waited += POLL_SECONDS


def merge_flags(ctx: ActionContext, fn: str, changes: dict[str, Any]) -> bool:
    """Set (str) or remove (ABSENT) flag variables on `fn`, keeping every other variable.

    Returns whether an update was needed. `changes` keys must be flag names.
    """
    lam = ctx.client("lambda")
    _wait_updated(ctx, lam, fn)
    current = _env(lam, fn)
    merged = dict(current)
    for name, value in changes.items():
        if value is ABSENT:
            merged.pop(name, None)
        else:
            merged[name] = value
    if merged == current:
        return False
    attempts = 0
    while True:
        try:
            lam.update_function_configuration(FunctionName=fn, Environment={"Variables": merged})
            break
        except lam.exceptions.ResourceConflictException:
            attempts += 1
            if attempts > 30:
                raise
            ctx.clock.sleep_real(POLL_SECONDS)
    _wait_updated(ctx, lam, fn)
    return True


def apply_flags(
    ctx: ActionContext, functions: list[str], values: dict[str, str], key: str = "flags"
) -> dict[str, Any]:
    """The journaled, resumable flag change shared by set_flags and shift_reads."""
    rb = ctx.runbook
    check_flag_names(rb, list(values))
    lam = ctx.client("lambda")
    slots: dict[str, dict[str, Any]] = ctx.cursors.setdefault(key, {})
    changed = 0
    for index, fn in enumerate(functions):
        ctx.clock.check()
        entry = slots.get(fn)
        if entry and entry.get("applied"):
            ctx.progress("functions", index + 1, len(functions))
            continue
        if entry is None:
            # capture the priors *before* any change, and persist them first
            current = _env(lam, fn)
            entry = {
                "prior": {k: current[k] for k in values if k in current},
                "absent": [k for k in values if k not in current],
                "applied": False,
            }
            slots[fn] = entry
            ctx.checkpoint(force=True)
        if "version" not in entry:
            # Lambda publishes nothing new when code and config are unchanged since the last
            # version, so a crash between publish and checkpoint cannot create a second one.
            version = lam.publish_version(
                FunctionName=fn, Description=f"runbook-console: before {ctx.step_id}"
            )["Version"]
            entry["version"] = version
            ctx.checkpoint(force=True)
        if merge_flags(ctx, fn, dict(values)):
            changed += 1
            ctx.log(f"{fn}: " + ", ".join(f"{k}={v}" for k, v in sorted(values.items())))
        entry["applied"] = True
        ctx.progress("functions", index + 1, len(functions))
        ctx.checkpoint(force=True)
    return {
        "functions": len(functions),
        "changed": changed,
        "flags": dict(sorted(values.items())),
        "versions": {fn: slots[fn]["version"] for fn in functions if "version" in slots[fn]},
    }


# --- set_flags ------------------------------------------------------------------------------


class SetFlagsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    values: dict[str, str]
    functions: list[str] | None = None  # selectors; default: runbook.flags.functions


def run_set_flags(ctx: ActionContext, p: SetFlagsParams) -> dict[str, Any]:
    return apply_flags(ctx, resolve_functions(ctx.runbook, p.functions), p.values)


def plan_set_flags(rb: Runbook, p: SetFlagsParams) -> list[PlannedCall]:
    calls = []
    note = ", ".join(f"{k}={v}" for k, v in sorted(p.values.items()))
    for fn in resolve_functions(rb, p.functions):
        calls.append(PlannedCall("lambda", "PublishVersion", fn, "before the change"))
        calls.append(PlannedCall("lambda", "UpdateFunctionConfiguration", fn, note))
    return calls


# --- restore_flags --------------------------------------------------------------------------


class RestoreFlagsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: list[str]


def _targets(ctx: ActionContext, steps: list[str]) -> dict[str, dict[str, Any]]:
    """Per function, each flag's value before the *earliest* of `steps` that changed it."""
    order = {s.id: i for i, s in enumerate(ctx.runbook.steps)}
    ranked = sorted(steps, key=lambda s: order.get(s, len(order)), reverse=True)
    targets: dict[str, dict[str, Any]] = {}
    for step_id in ranked:  # latest first; earlier steps overwrite
        state = ctx.journal.steps.get(step_id)
        if state is None:
            continue
        for key in ("flags",):
            for fn, entry in state.cursors.get(key, {}).items():
                t = targets.setdefault(fn, {})
                t.update(entry.get("prior", {}))
                t.update({name: ABSENT for name in entry.get("absent", [])})
    return targets


def run_restore_flags(ctx: ActionContext, p: RestoreFlagsParams) -> dict[str, Any]:
    targets = _targets(ctx, p.steps)
    done: list[str] = ctx.cursors.setdefault("restored", [])
    changed = 0
    for index, (fn, target) in enumerate(targets.items()):
        ctx.clock.check()
        if fn in done:
            continue
        check_flag_names(ctx.runbook, list(target))
        if merge_flags(ctx, fn, target):
            changed += 1
            shown = ", ".join(
                f"{k}={'(absent)' if v is ABSENT else v}" for k, v in sorted(target.items())
            )
            ctx.log(f"{fn}: restored {shown}")
        done.append(fn)
        ctx.progress("functions", index + 1, len(targets))
        ctx.checkpoint(force=True)
    if not targets:
        ctx.log(f"no flag changes journaled by {', '.join(p.steps)}; nothing to restore", "warning")
    return {"functions": len(targets), "changed": changed, "steps": list(p.steps)}


def plan_restore_flags(rb: Runbook, p: RestoreFlagsParams) -> list[PlannedCall]:
    return [
        PlannedCall(
            "lambda", "UpdateFunctionConfiguration", fn, f"flags as before {', '.join(p.steps)}"
        )
        for fn in rb.flags.functions
    ]


ACTIONS = (
    Action(
        "set_flags",
        SetFlagsParams,
        run_set_flags,
        plan_set_flags,
        "Set feature flags (Lambda environment variables), merged, priors journaled",
    ),
    Action(
        "restore_flags",
        RestoreFlagsParams,
        run_restore_flags,
        plan_restore_flags,
        "Put flags back to the values journaled before the named steps",
    ),
)
