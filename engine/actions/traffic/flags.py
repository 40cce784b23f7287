"""Feature flags as Lambda environment variables: set (journaling priors) and restore.

update_function_configuration replaces the whole environment, so every change is a merge with
the function's current variables. Only flag names (runbook.flags.names()) and their values are
ever journaled, logged or returned; other variables may hold secrets and are never read out.

An environment change applies to `$LATEST` only; published versions are immutable. So after the
merge (and LastUpdateStatus=Successful) a function that is invoked through an alias (API
Gateway integration URI or event source mapping, see engine/aws/invocations.py) gets a new
published version, and every invoked alias is moved to it. A function invoked by a fixed version
number cannot be reached by a flag: the Day-1 inventory asks a human to accept or fix that; here
it is logged and counted in the summary (`unreachable`).

Cursor format of a set_flags / shift_reads step (restore_flags relies on it):

    [steps.<id>.cursors.flags."<function>"]
    version = "3"                 # published before the change (code + config to revert to)
    prior = { DUAL_WRITE_ENABLED = "false" }   # flag values before the change
    absent = ["READ_PERCENT"]     # flags that were not set before the change
    aliases = { live = "3" }      # invoked aliases and the version each pointed at before
    routing = { live = { "2" = 0.1 } }   # an alias's weighted routing before (if any)
    published = "5"               # the version published after the change (aliases move here)
    moved = ["live"]              # aliases moved to `published`
    applied = true                # the change is in place
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.actions.api_identity import api_id_of
from engine.aws import invocations
from engine.aws.environment import EnvironmentSealed, read_environment, sealed_environment
from engine.core.context import Action, ActionContext, PlannedCall
from engine.runbook.model import Runbook
from engine.state.journal import Journal
from engine.state.records import Cursors, Record, Summary
from engine.state.resume import cursors_of

POLL_SECONDS = 1.0
MAX_UPDATE_WAIT_SECONDS = 300.0
MAX_CONFLICT_ATTEMPTS = 12
MAX_BACKOFF_SECONDS = 20.0
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


class ChangedMeanwhile(RuntimeError):
    """A function changed between the read and the write of its environment (a deploy):
    nothing was written."""


def _env(lam: Any, fn: str) -> dict[str, str]:
    return read_environment(lam.get_function_configuration(FunctionName=fn), fn)


def wait_updated(ctx: ActionContext, lam: Any, fn: str, version: str | None = None) -> None:
    """Wait until a configuration update has settled (AWS applies it asynchronously), or a
    published `version` is Active (Pending while Lambda prepares it: VPC, SnapStart)."""
    waited = 0.0
    qualified = {"Qualifier": version} if version else {}
    while True:
        conf = lam.get_function_configuration(FunctionName=fn, **qualified)
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
    wait_updated(ctx, lam, fn)
    conf = lam.get_function_configuration(FunctionName=fn)
    current = read_environment(conf, fn)
    if conf.get("KMSKeyArn") and not current:
        raise EnvironmentSealed(
            f"{fn}: {sealed_environment(conf)} and no variable could be read; nothing written "
            "(a flags-only environment would wipe every other variable)"
        )
    merged = dict(current)
    for name, value in changes.items():
        if value is ABSENT:
            merged.pop(name, None)
        else:
            merged[name] = value
    if merged == current:
        return False
    update: dict[str, Any] = {"FunctionName": fn, "Environment": {"Variables": merged}}
    if conf.get("RevisionId"):  # AWS always returns one; a stand-in emulator may not
        update["RevisionId"] = conf["RevisionId"]
    else:
        ctx.log(
            f"{fn}: the target returned no RevisionId; a concurrent deploy goes unseen", "warning"
        )
    try:
        retry_conflicts(
            ctx,
            lam,
            f"{fn}: update configuration",
            lambda: lam.update_function_configuration(**update),
        )
    except lam.exceptions.PreconditionFailedException as exc:
        raise ChangedMeanwhile(
            f"{fn}: changed between reading and writing its environment (a deploy?): nothing "
            "written, the deploy's configuration stands; run the step again to merge the flags "
            f"into it ({exc})"
        ) from exc
    wait_updated(ctx, lam, fn)
    return True


def retry_conflicts(ctx: ActionContext, lam: Any, what: str, call: Any) -> Any:
    """Call, retrying ResourceConflictException (an update still in progress) with backoff."""
    for attempt in range(MAX_CONFLICT_ATTEMPTS):
        try:
            return call()
        except lam.exceptions.ResourceConflictException:
            if attempt == MAX_CONFLICT_ATTEMPTS - 1:
                raise
            ctx.clock.sleep_real(min(MAX_BACKOFF_SECONDS, 0.5 * 2**attempt))
    raise AssertionError("unreachable")


def publish(ctx: ActionContext, lam: Any, fn: str, description: str) -> str:
    """PublishVersion once the last update has settled; Lambda returns the latest version
    instead of a new one when nothing changed since, so a repeat is harmless. Returns once
    the version is Active."""
    wait_updated(ctx, lam, fn)
    version = retry_conflicts(
        ctx,
        lam,
        f"{fn}: publish version",
        lambda: lam.publish_version(FunctionName=fn, Description=description[:256]),
    )["Version"]
    wait_updated(ctx, lam, fn, version)  # an alias moves to an Active version only
    return str(version)


def discover_invocations(ctx: ActionContext, functions: list[str]) -> invocations.Invocations:
    """How the runbook's API and the account's event sources invoke `functions`."""

    integrations: list[invocations.Integration] = []
    api_id = api_id_of(ctx)  # the journaled id: never another API of the same name
    if api_id is not None:
        integrations = invocations.api_integrations(ctx.client("apigateway"), api_id)
    return invocations.discover(ctx.client("lambda"), integrations, functions)


def _alias_state(lam: Any, fn: str, alias: str) -> tuple[str, dict[str, float]]:
    got = lam.get_alias(FunctionName=fn, Name=alias)
    weights = (got.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return got["FunctionVersion"], {k: float(v) for k, v in weights.items()}


def move_alias(
    ctx: ActionContext, lam: Any, fn: str, alias: str, version: str, weights: dict[str, float]
) -> None:
    retry_conflicts(
        ctx,
        lam,
        f"{fn}:{alias}: update alias",
        lambda: lam.update_alias(
            FunctionName=fn,
            Name=alias,
            FunctionVersion=version,
            RoutingConfig={"AdditionalVersionWeights": weights},
        ),
    )


class FlagChange(Record):
    """One function's journaled flag change (see the module's docstring)."""

    prior: dict[str, str] = {}
    absent: list[str] = []
    aliases: dict[str, str] = {}
    routing: dict[str, dict[str, float]] = {}
    fixed_versions: list[str] = []
    version: str | None = None
    published: str | None = None
    moved: list[str] = []
    applied: bool = False


class FlagCursors(Cursors):
    flags: dict[str, FlagChange] = {}  # function -> its change


class FlagsSummary(Summary):
    functions: int = 0
    changed: int = 0
    flags: dict[str, str] = {}
    versions: dict[str, str] = {}
    aliases_moved: dict[str, str] = {}
    unreachable: list[str] = []


def flag_changes_of(journal: Journal, step_id: str) -> dict[str, FlagChange]:
    """The flag changes a set_flags / shift_reads step journaled, by function."""
    cursors = cursors_of(journal, step_id, FlagCursors)
    return dict(cursors.flags) if cursors else {}


def apply_flags(
    ctx: ActionContext, cursors: FlagCursors, functions: list[str], values: dict[str, str]
) -> FlagsSummary:
    """The journaled, resumable flag change shared by set_flags and shift_reads."""
    rb = ctx.runbook
    check_flag_names(rb, list(values))
    lam = ctx.client("lambda")
    slots = cursors.flags
    changed = 0
    found: invocations.Invocations | None = None
    unreachable: list[str] = []
    for index, fn in enumerate(functions):
        ctx.clock.check()
        entry = slots.get(fn)
        if entry and entry.applied:
            ctx.progress("functions", index + 1, len(functions))
            continue
        if entry is None:
            if found is None:
                found = discover_invocations(ctx, functions)
            # capture the priors *before* any change, and persist them first
            current = _env(lam, fn)
            entry = FlagChange(
                prior={k: current[k] for k in values if k in current},
                absent=[k for k in values if k not in current],
                fixed_versions=sorted(found.fixed_versions(fn)),
            )
            for alias in found.aliases(fn):
                version, weights = _alias_state(lam, fn, alias)
                entry.aliases[alias] = version
                if weights:
                    entry.routing[alias] = weights
            slots[fn] = entry
            ctx.checkpoint(force=True)
        if entry.version is None:
            # Lambda publishes nothing new when code and config are unchanged since the last
            # version, so a crash between publish and checkpoint cannot create a second one.
            entry.version = publish(ctx, lam, fn, f"runbook-console: before {ctx.step_id}")
            ctx.checkpoint(force=True)
        if merge_flags(ctx, fn, dict(values)):
            changed += 1
            ctx.log(f"{fn}: " + ", ".join(f"{k}={v}" for k, v in sorted(values.items())))
            # $LATEST changed after an earlier attempt published: that version is stale
            entry.published, entry.moved = None, []
        if entry.aliases:
            if entry.published is None:
                entry.published = publish(
                    ctx, lam, fn, f"runbook-console: {ctx.step_id} " + _describe(values)
                )
                ctx.checkpoint(force=True)
            published = entry.published
            for alias, before in sorted(entry.aliases.items()):
                if alias in entry.moved:
                    continue
                move_alias(ctx, lam, fn, alias, published, {})
                entry.moved.append(alias)
                ctx.log(f"{fn}: alias {alias} moved from version {before} to {published}")
                ctx.checkpoint(force=True)
        for version in entry.fixed_versions:
            unreachable.append(f"{fn}:{version}")
            ctx.log(
                f"{fn}: version {version} is invoked by number; published versions never "
                "change, so these flags do not reach it",
                "warning",
            )
        entry.applied = True
        ctx.progress("functions", index + 1, len(functions))
        ctx.checkpoint(force=True)
    return FlagsSummary(
        functions=len(functions),
        changed=changed,
        flags=dict(sorted(values.items())),
        versions={fn: v for fn in functions if (v := slots[fn].version) is not None},
        aliases_moved={
            f"{fn}:{a}": slots[fn].published or "" for fn in functions for a in slots[fn].moved
        },
        unreachable=unreachable,
    )


def _describe(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(values.items()))


def journaled_flag(ctx: ActionContext, name: str) -> str | None:
    """The value the journal says flag `name` was last given: by the set_flags step of the
    runbook, or the restore_flags rollback step, that started last (a started step may have
    changed some functions already). None when no step set it (or put it back to absent)."""
    rb, journal = ctx.runbook, ctx.journal
    changes: list[tuple[Any, str | None]] = []
    setters: dict[str, str] = {}
    for step in rb.steps:
        if step.action == "set_flags" and name in (step.params.get("values") or {}):
            setters[step.id] = str(step.params["values"][name])
            state = journal.steps.get(step.id)
            if state is not None and state.started_at is not None:
                changes.append((state.started_at, setters[step.id]))
    for rollback in rb.rollbacks:
        for index, rstep in enumerate(rollback.steps):
            state = journal.rollback_steps.get(f"{rollback.id}#{index}")
            if rstep.action != "restore_flags" or state is None or state.started_at is None:
                continue
            undone = [s for s in rstep.params.get("steps", []) if s in setters]
            if not undone:
                continue
            # back to the value before the earliest of them (its journaled prior)
            first = min(undone, key=lambda s: [st.id for st in rb.steps].index(s))
            priors = [e.prior.get(name) for e in flag_changes_of(journal, first).values()]
            changes.append((state.started_at, next((v for v in priors if v is not None), None)))
    if not changes:
        return None
    return max(changes, key=lambda c: c[0])[1]


# --- set_flags ------------------------------------------------------------------------------


class SetFlagsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    values: dict[str, str]
    functions: list[str] | None = None  # selectors; default: runbook.flags.functions


def run_set_flags(ctx: ActionContext, p: SetFlagsParams) -> FlagsSummary:
    cursors = ctx.cursors_as(FlagCursors)
    return apply_flags(ctx, cursors, resolve_functions(ctx.runbook, p.functions), p.values)


def plan_set_flags(rb: Runbook, p: SetFlagsParams) -> list[PlannedCall]:
    return plan_flag_calls(rb, resolve_functions(rb, p.functions), p.values)


def plan_flag_calls(rb: Runbook, functions: list[str], values: dict[str, str]) -> list[PlannedCall]:
    calls = []
    note = _describe(values)
    for fn in functions:
        calls.append(PlannedCall("lambda", "PublishVersion", fn, "before the change"))
        calls.append(PlannedCall("lambda", "UpdateFunctionConfiguration", fn, note))
        calls.append(PlannedCall("lambda", "PublishVersion", fn, "after the change, if aliased"))
        calls.append(PlannedCall("lambda", "UpdateAlias", fn, "every invoked alias"))
    return calls


# --- restore_flags --------------------------------------------------------------------------


class RestoreFlagsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: list[str]


def _targets(
    ctx: ActionContext, steps: list[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, tuple[str, dict[str, float]]]]]:
    """Per function, each flag's value and each moved alias's version (with its routing)
    before the *earliest* of `steps` that changed it."""
    order = {s.id: i for i, s in enumerate(ctx.runbook.steps)}
    ranked = sorted(steps, key=lambda s: order.get(s, len(order)), reverse=True)
    targets: dict[str, dict[str, Any]] = {}
    aliases: dict[str, dict[str, tuple[str, dict[str, float]]]] = {}
    for step_id in ranked:  # latest first; earlier steps overwrite
        for fn, entry in flag_changes_of(ctx.journal, step_id).items():
            t = targets.setdefault(fn, {})
            t.update(entry.prior)
            t.update({name: ABSENT for name in entry.absent})
            for alias in entry.moved:
                before = entry.aliases.get(alias)
                if before:
                    routing = dict(entry.routing.get(alias, {}))
                    aliases.setdefault(fn, {})[alias] = (before, routing)
    return targets, aliases


class RestoreFlagsCursors(Cursors):
    restored: list[str] = []  # functions whose flags are back
    aliases_restored: list[str] = []  # "<function>:<alias>" moved back


class RestoreFlagsSummary(Summary):
    functions: int = 0
    changed: int = 0
    steps: list[str] = []
    aliases_restored: list[str] = []


def run_restore_flags(ctx: ActionContext, p: RestoreFlagsParams) -> RestoreFlagsSummary:
    targets, aliases = _targets(ctx, p.steps)
    lam = ctx.client("lambda")
    cursors = ctx.cursors_as(RestoreFlagsCursors)
    done, moved_back = cursors.restored, cursors.aliases_restored
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
        for alias, (version, weights) in sorted(aliases.get(fn, {}).items()):
            key = f"{fn}:{alias}"
            if key in moved_back:
                continue
            move_alias(ctx, lam, fn, alias, version, weights)
            moved_back.append(key)
            ctx.log(f"{fn}: alias {alias} moved back to version {version}")
            ctx.checkpoint(force=True)
        done.append(fn)
        ctx.progress("functions", index + 1, len(targets))
        ctx.checkpoint(force=True)
    if not targets:
        ctx.log(f"no flag changes journaled by {', '.join(p.steps)}; nothing to restore", "warning")
    return RestoreFlagsSummary(
        functions=len(targets), changed=changed, steps=list(p.steps), aliases_restored=moved_back
    )


def plan_restore_flags(rb: Runbook, p: RestoreFlagsParams) -> list[PlannedCall]:
    calls = []
    for fn in rb.flags.functions:
        note = f"flags as before {', '.join(p.steps)}"
        calls.append(PlannedCall("lambda", "UpdateFunctionConfiguration", fn, note))
        calls.append(PlannedCall("lambda", "UpdateAlias", fn, "moved aliases back"))
    return calls


ACTIONS = (
    Action(
        "set_flags",
        SetFlagsParams,
        run_set_flags,
        plan_set_flags,
        "Set feature flags (Lambda environment variables), merged, priors journaled",
        cursors=FlagCursors,
        summary=FlagsSummary,
    ),
    Action(
        "restore_flags",
        RestoreFlagsParams,
        run_restore_flags,
        plan_restore_flags,
        "Put flags back to the values journaled before the named steps",
        cursors=RestoreFlagsCursors,
        summary=RestoreFlagsSummary,
    ),
)
