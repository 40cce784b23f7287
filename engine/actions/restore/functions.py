"""restore_functions: recreate the Lambda functions (and log groups) a delete_functions step
deleted, from its archive; the environment from its SSM SecureString.

A function comes back with its whole configuration (restore/function_spec.py; on a runtime AWS
blocks creates on, on the runbook's `replacement_runtimes`), then, once Active, its versions
(each with its own archived code: restore/function_code.py) and aliases
(restore/function_versions.py), its permissions per qualifier, function URLs (new ones: AWS
never gives an URL back) and event source mappings (restore/function_links.py); an URL config
or mapping already there is made like the archived one (restore/existing_links.py).

cursors `restored`, `created`, `versions` ({fn: {old: new}}), `mappings` ({old UUID: new}),
`runtime_replaced`, `urls`, `placeholder_code` (rehearsal only: code that could not be archived
was replaced by a stub handler), `log_groups_restored`; the summary says the same.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.actions.cleanup.common import safe_name
from engine.actions.cleanup.state import function_deletions_of
from engine.actions.restore.common import archive_folder
from engine.actions.restore.function_links import (
    restore_mappings,
    restore_permissions,
    restore_urls,
)
from engine.actions.restore.function_spec import create_settings
from engine.actions.restore.function_versions import (
    restore_aliases,
    restore_versions,
    wait_active,
)
from engine.actions.traffic.flags import retry_conflicts
from engine.aws.resend import create_once
from engine.aws.tags import user_tags
from engine.core.context import Action, ActionContext, PlannedCall
from engine.runbook.model import Runbook
from engine.runbook.runtimes import restore_runtime
from engine.state.records import Cursors, Summary


class RestoreFunctionsCursors(Cursors):
    restored: list[str] = []
    placeholder_code: list[str] = []  # rehearsal only: code not archived, a stub handler
    log_groups_restored: list[str] = []
    created: list[str] = []  # recreated, not yet restored whole
    versions: dict[str, dict[str, str]] = {}  # function -> {archived version: new number}
    aliases: dict[str, list[str]] = {}  # function -> the aliases it has again
    mappings: dict[str, str] = {}  # archived event source mapping UUID -> the new one
    runtime_replaced: dict[str, str] = {}  # function -> "python3.8 -> python3.12"
    urls: dict[str, str] = {}  # "fn[:alias]" -> its new function URL


class RestoreFunctionsSummary(Summary):
    restored: list[str] = []
    placeholder_code: list[str] = []
    log_groups_restored: int = 0
    aliases_restored: int = 0
    versions_published: int = 0
    mappings_restored: int = 0
    runtime_replaced: dict[str, str] = {}
    urls: dict[str, str] = {}


class RestoreFunctionsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    delete_step: str
    # a runtime AWS blocks creates on -> the runtime a restore creates the function on
    replacement_runtimes: dict[str, str] = {}


def _create_kwargs(
    ctx: ActionContext,
    fn: str,
    record: dict[str, Any],
    folder: Path,
    placeholder: list[str],
    p: RestoreFunctionsParams,
    replaced: dict[str, str],
) -> dict[str, Any]:
    conf = record["configuration"]
    kwargs: dict[str, Any] = {"FunctionName": fn, **create_settings(conf)}
    runtime, why = restore_runtime(
        ctx.runbook.lambda_runtimes,
        conf.get("Runtime", ""),
        p.replacement_runtimes,
        datetime.now(UTC).date(),  # AWS blocks creates by the calendar, not the plan's clock
    )
    if why:
        kwargs["Runtime"] = runtime
        replaced[fn] = f"{conf['Runtime']} -> {runtime}"
        ctx.log(f"{fn}: {why}", "warning")
    tags, reserved = user_tags(record.get("tags"))
    if tags:
        kwargs["Tags"] = tags
    if reserved:
        ctx.log(f"{fn}: tags {', '.join(reserved)} are set by AWS (CloudFormation), not restored")
    if record.get("environment_parameter"):
        value = ctx.client("ssm").get_parameter(
            Name=record["environment_parameter"], WithDecryption=True
        )["Parameter"]["Value"]
        kwargs["Environment"] = {"Variables": json.loads(value)}
    code = record["code"]
    if code.get("retrieved") and (folder / code["file"]).exists():
        kwargs["Code"] = {"ZipFile": (folder / code["file"]).read_bytes()}
    elif code.get("image_uri"):
        kwargs["Code"] = {"ImageUri": code["image_uri"]}
    elif (placeholder_zip := ctx.world.placeholder_code()) is not None:
        kwargs["Code"] = {"ZipFile": placeholder_zip}
        kwargs["Handler"] = "index.handler"
        if fn not in placeholder:
            placeholder.append(fn)
        ctx.log(
            f"{fn}: code was not archived ({code.get('reason', '')}); rehearsal restore "
            "with a stub handler",
            "warning",
        )
    else:
        raise RuntimeError(
            f"{fn}: its code package was not archived ({code.get('reason', '')});"
            " redeploy it from the build pipeline, then re-run this restore"
        )
    return kwargs


def _runtime(ctx: ActionContext, runtime: str, p: RestoreFunctionsParams) -> str:
    """The runtime a restore creates or configures on (AWS blocks by the calendar, not the
    plan's clock)."""
    today = datetime.now(UTC).date()
    return restore_runtime(ctx.runbook.lambda_runtimes, runtime, p.replacement_runtimes, today)[0]


def _check_runtimes(
    ctx: ActionContext,
    deleted: list[str],
    folder: Path,
    p: RestoreFunctionsParams,
    c: RestoreFunctionsCursors,
) -> None:
    """RuntimeBlocked before anything is created when a function to create is on a runtime
    AWS blocks creates on and the runbook names no replacement."""
    today = datetime.now(UTC).date()
    for fn in deleted:
        path = folder / f"{safe_name(fn)}.json"
        if fn in c.created or fn in c.restored or not path.exists():
            continue
        runtime = json.loads(path.read_text())["configuration"].get("Runtime", "")
        restore_runtime(ctx.runbook.lambda_runtimes, runtime, p.replacement_runtimes, today)


_COMPARED = ("Role", "Handler", "PackageType", "CodeSha256")


def _warn_if_not_archived(
    ctx: ActionContext, fn: str, record: dict[str, Any], live: dict[str, Any]
) -> None:
    """A function of that name exists, not made by this restore (a redeploy, or a crash
    before the journal said so): kept, and the log names what differs from the archive."""
    archived, conf = record["configuration"], live["Configuration"]
    differs = [k for k in _COMPARED if archived.get(k) and conf.get(k) != archived.get(k)]
    if differs:
        ctx.log(
            f"{fn} exists and differs from its archive ({', '.join(differs)}): kept as it is; "
            "its versions, aliases, permissions and mappings are restored on it",
            "warning",
        )


def _exists(lam: Any, fn: str) -> str | None:
    try:
        lam.get_function(FunctionName=fn)
    except lam.exceptions.ResourceNotFoundException:
        return None
    return fn


def _restore_log_group(ctx: ActionContext, group: str, folder: Path) -> None:
    logs = ctx.client("logs")
    path = folder / f"{safe_name(group)}.loggroup.json"
    record = json.loads(path.read_text()) if path.exists() else {"log_group": {}}
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    if record["log_group"].get("retentionInDays"):
        logs.put_retention_policy(
            logGroupName=group, retentionInDays=record["log_group"]["retentionInDays"]
        )
    for f in record.get("metric_filters", []):
        logs.put_metric_filter(
            logGroupName=group,
            filterName=f["filterName"],
            filterPattern=f.get("filterPattern", ""),
            metricTransformations=f["metricTransformations"],
        )


def run_restore_functions(ctx: ActionContext, p: RestoreFunctionsParams) -> RestoreFunctionsSummary:
    lam = ctx.client("lambda")
    deletions = function_deletions_of(ctx.journal, p.delete_step)
    folder = archive_folder(ctx, deletions.archive_dir, p.delete_step)
    deleted, groups = list(deletions.deleted), list(deletions.log_groups_deleted)
    c = ctx.cursors_as(RestoreFunctionsCursors)
    restored, placeholder, groups_restored = c.restored, c.placeholder_code, c.log_groups_restored
    _check_runtimes(ctx, deleted, folder, p, c)  # all or nothing: before the first create
    for index, fn in enumerate(deleted):
        ctx.clock.check()
        if fn in restored:
            continue
        path = folder / f"{safe_name(fn)}.json"
        if not path.exists():
            raise RuntimeError(f"{fn}: no archive at {path}; cannot restore")
        record = json.loads(path.read_text())
        if fn not in c.created:
            try:
                _warn_if_not_archived(ctx, fn, record, lam.get_function(FunctionName=fn))
            except lam.exceptions.ResourceNotFoundException:
                create = _create_kwargs(ctx, fn, record, folder, placeholder, p, c.runtime_replaced)
                create_once(
                    lambda kw=create: lam.create_function(**kw), lambda f=fn: _exists(lam, f)
                )
                ctx.log(f"recreated function {fn}")
            c.created.append(fn)
            ctx.checkpoint(force=True)
        wait_active(ctx, lam, fn)  # versions, aliases and permissions need Active
        version_map = c.versions.setdefault(fn, {})
        restore_versions(ctx, lam, fn, record, folder, version_map, lambda r: _runtime(ctx, r, p))
        c.aliases[fn] = restore_aliases(ctx, lam, fn, record, version_map)
        restore_permissions(ctx, lam, fn, record, version_map)
        c.urls.update(restore_urls(ctx, lam, fn, record))
        reserved = record.get("concurrency", {}).get("ReservedConcurrentExecutions")
        if reserved is not None:
            retry_conflicts(
                ctx,
                lam,
                f"{fn}: concurrency",
                lambda fn=fn, n=reserved: lam.put_function_concurrency(
                    FunctionName=fn, ReservedConcurrentExecutions=n
                ),
            )
        restore_mappings(ctx, lam, fn, record, version_map, c.mappings)
        restored.append(fn)
        ctx.progress("functions", index + 1, len(deleted))
        ctx.checkpoint(force=True)
    for group in groups:
        if group in groups_restored:
            continue
        _restore_log_group(ctx, group, folder)
        groups_restored.append(group)
        ctx.checkpoint()
    ctx.checkpoint(force=True)
    return RestoreFunctionsSummary(
        restored=list(restored),
        placeholder_code=list(placeholder),
        log_groups_restored=len(groups_restored),
        aliases_restored=sum(len(names) for names in c.aliases.values()),
        versions_published=sum(len(set(m.values())) for m in c.versions.values()),
        mappings_restored=len(c.mappings),
        runtime_replaced=dict(c.runtime_replaced),
        urls=dict(c.urls),
    )


def plan_restore_functions(rb: Runbook, p: RestoreFunctionsParams) -> list[PlannedCall]:
    what = f"functions {p.delete_step} deleted"
    return [
        PlannedCall(
            "lambda", "CreateFunction", what, "from archives; environment from SSM SecureString"
        ),
        PlannedCall(
            "lambda", "UpdateFunctionCode", what, "a version's own archived code, then $LATEST's"
        ),
        PlannedCall("lambda", "PublishVersion", what, "each archived version, oldest first"),
        PlannedCall("lambda", "CreateAlias", what, "each archived alias, on the new versions"),
        PlannedCall("lambda", "AddPermission", what, "each statement, per qualifier"),
        PlannedCall("lambda", "CreateFunctionUrlConfig", what, "a new URL: AWS never reuses one"),
        PlannedCall("lambda", "CreateEventSourceMapping", what, "on the source as it is now"),
    ]


ACTIONS = (
    Action(
        "restore_functions",
        RestoreFunctionsParams,
        run_restore_functions,
        plan_restore_functions,
        "Recreate deleted Lambda functions from their archives",
        cursors=RestoreFunctionsCursors,
        summary=RestoreFunctionsSummary,
    ),
)
