"""A Phase 5 restore brings a deleted legacy function back as it was, not as near as it could:
each published version with its own code, and a function URL or event source mapping found
already there (a resume after a crash, or made again by someone) made like the archived one.

The seeded world's legacy function (engine/rehearsal/legacy_shape.py): two versions behind the
alias `live`, a function URL on the alias, a mapping from the legacy table's stream to it."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest

from engine.actions.cleanup.function_code import code_file, code_sha
from engine.aws import iam_policy
from engine.core.events import LogLine
from engine.rehearsal.legacy_shape import legacy_function_of
from tests.support.actions import final_backups, go, rollback_params, run
from tests.support.aws_inject import rewrite_answer
from tests.support.step_functions import CallRecorder

ACCOUNT = "123456789012"  # moto's
CODE_BUCKET = "lambda-code-locations"


class Killed(BaseException):
    """The process dying right after an answer: nothing after it runs, nothing is journaled."""


def _package(body: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo("index.py", (2026, 1, 1, 0, 0, 0)), body)
    return buf.getvalue()


def _code_locations(conn: Any) -> dict[str, bytes]:
    """AWS's GetFunction gives each version's own package at a presigned URL; moto gives one
    it never stores (its versions even share $LATEST's). Here each answer names an object in
    the target's S3 by the code's SHA: present for the packages put in the returned dict,
    absent (not retrievable) for any other, such as the seed's."""
    s3 = conn.session.client("s3")  # not the engine's client: its calls are the test's
    s3.create_bucket(Bucket=CODE_BUCKET)
    packages: dict[str, bytes] = {}

    def located(parsed: dict[str, Any], _: int) -> None:
        if "Code" not in parsed:  # an error's answer (no such function)
            return
        sha = parsed["Configuration"]["CodeSha256"]
        key = code_file(sha)
        if sha in packages:
            s3.put_object(Bucket=CODE_BUCKET, Key=key, Body=packages[sha])
        parsed["Code"]["Location"] = f"https://{CODE_BUCKET}.s3.us-east-1.amazonaws.com/{key}"

    rewrite_answer(conn.client("lambda"), "GetFunction", located)
    return packages


def _deploy(lam: Any, fn: str, packages: dict[str, bytes], body: str) -> str:
    package = _package(body)
    packages[code_sha(package)] = package
    lam.update_function_code(FunctionName=fn, ZipFile=package)
    lam.get_waiter("function_updated_v2").wait(FunctionName=fn)
    return code_sha(package)


def _delete_phase5(world: Any, make_ctx: Any, table: str, fn: str) -> tuple[Any, list[Any]]:
    """The function and its table deleted, the table restored; (the delete's context, events)."""
    ctx, events = make_ctx("delete-deprecated-functions", world)
    go(ctx.journal)
    run(ctx, "delete_functions", {"functions": [fn], "delete_log_groups": True})
    tctx, _ = make_ctx("delete-deprecated-tables", world, journal=ctx.journal)
    final_backups(world, ctx.journal, [table])
    run(tctx, "delete_tables", {"tables": [table], "backup_step": "final-backups"})
    rctx, _ = make_ctx("rollback-cleanup#0", world, journal=ctx.journal)
    run(rctx, "restore_tables", rollback_params(rctx.runbook, "restore_tables"))
    return ctx, events


def _uncovered(calls: list[tuple[str, str, dict[str, Any]]], runbook: Any) -> list[str]:
    """The calls `runbook iam-policy` does not grant."""
    policy = iam_policy.build_policy(runbook, ACCOUNT)
    missing = set()
    for service, op, params in calls:
        if iam_policy.rehearsal_only(service, op, params):
            continue
        action = iam_policy.iam_action(service, op)
        for arn in iam_policy.resources_for_call(service, op, params, "us-east-1", ACCOUNT):
            if not iam_policy.allows(policy, action, arn):
                missing.add(f"{service}.{op} -> {action} on {arn}")
    return sorted(missing)


def _publishes(lam: Any) -> list[str]:
    """One entry per PublishVersion the engine's client sends from now on."""
    published: list[str] = []
    lam.meta.events.register(
        "before-call.lambda.PublishVersion", lambda **_: published.append("publish")
    )
    return published


def _restore_killed(
    lam: Any, ctx: Any, runbook: Any, event: str, published: list[str], after: int
) -> None:
    """restore_functions, killed at `event` once `after` versions were published."""

    def kill(**_: Any) -> None:
        if len(published) == after:
            raise Killed("killed")

    lam.meta.events.register(event, kill)
    with pytest.raises(Killed):
        run(ctx, "restore_functions", rollback_params(runbook, "restore_functions"))
    lam.meta.events.unregister(event, kill)


def _warnings(events: list[Any]) -> list[str]:
    return [e.message for e in events if isinstance(e, LogLine) and e.level == "warning"]


def test_each_published_version_comes_back_with_its_own_code(world, make_ctx, runbook):
    """Versions 1 and 2 run the seed's code (not retrievable here), 3 and 4 code B, $LATEST
    code C: B is archived once, by its SHA; each version is published again from its own code
    (1 and 2 from $LATEST's, and the log says why), and $LATEST ends on C, also when a kill
    after the last publish leaves it on B."""
    fn, table = legacy_function_of(runbook)
    lam = world.client("lambda")
    packages = _code_locations(world)
    seed_sha = lam.get_function_configuration(FunctionName=fn)["CodeSha256"]
    b = _deploy(lam, fn, packages, "def handler(event, context):\n    return 'B'\n")
    assert lam.publish_version(FunctionName=fn, Description="release 3")["Version"] == "3"
    lam.update_function_configuration(FunctionName=fn, Timeout=20)
    lam.get_waiter("function_updated_v2").wait(FunctionName=fn)
    assert lam.publish_version(FunctionName=fn, Description="release 4")["Version"] == "4"
    c = _deploy(lam, fn, packages, "def handler(event, context):\n    return 'C'\n")
    recorder = CallRecorder(world)
    qualified: list[str] = []

    def qualifier(params: dict[str, Any], **_: Any) -> None:
        if "Qualifier" in params:
            qualified.append(params["Qualifier"])

    lam.meta.events.register("provide-client-params.lambda.GetFunction", qualifier)

    ctx, deleted = _delete_phase5(world, make_ctx, table, fn)
    assert any(
        "code of version(s) 1, 2 not archived (code location not retrievable" in w
        for w in _warnings(deleted)
    ), _warnings(deleted)
    folder = ctx.artifact(ctx.cursors["archive_dir"])
    archive = json.loads((folder / f"{fn}.json").read_text())
    versions = archive["code"]["versions"]
    assert {v: versions[v]["file"] for v in versions} == {
        "1": "",
        "2": "",
        "3": code_file(b),
        "4": code_file(b),
    }
    assert versions["1"]["sha"] == seed_sha and "not retrievable" in versions["1"]["reason"]
    assert archive["code"]["file"] == f"{fn}.zip"  # $LATEST's: C
    assert sorted(p.name for p in folder.glob("code-*")) == [code_file(b)]  # B once
    assert qualified == ["1", "3"]  # one GetFunction per distinct code, not per version

    fctx, events = make_ctx("rollback-cleanup#1", world, journal=ctx.journal)
    published = _publishes(lam)
    _restore_killed(lam, fctx, runbook, "after-call.lambda.PublishVersion", published, after=4)
    assert lam.get_function_configuration(FunctionName=fn)["CodeSha256"] == b  # killed on B
    run(fctx, "restore_functions", rollback_params(runbook, "restore_functions"))
    calls = list(recorder.calls)

    assert len(published) == 4  # the fourth adopted after the kill, never published twice
    new = fctx.cursors["versions"][fn]
    assert len(set(new.values())) == 4

    def version(n: str) -> dict[str, Any]:
        return lam.get_function_configuration(FunctionName=fn, Qualifier=new[n])

    assert [version(n)["CodeSha256"] for n in ("1", "2", "3", "4")] == [c, c, b, b]
    assert [version(n)["Timeout"] for n in ("1", "2", "3", "4")] == [3, 10, 10, 20]
    latest = lam.get_function_configuration(FunctionName=fn)
    assert latest["CodeSha256"] == c and latest["Timeout"] == 20  # $LATEST's own, again
    said = _warnings(events)
    assert any(f"version 1 ran code {seed_sha[:12]}" in w for w in said), said
    assert any("not retrievable" in w for w in said if "version 2 ran code" in w), said
    assert not any("version 3 ran code" in w for w in said), said
    assert _uncovered(calls, runbook) == []  # GetFunction on fn:1, UpdateFunctionCode


def test_a_resume_after_the_last_publish_gives_latest_its_own_settings(world, make_ctx, runbook):
    """Version 3 runs $LATEST's code with Timeout 20, $LATEST has 30: a kill after the last
    publish is journaled, before $LATEST takes its own settings back, leaves it with version
    3's; the resume gives it its own."""
    fn, table = legacy_function_of(runbook)
    lam = world.client("lambda")
    packages = _code_locations(world)
    _deploy(lam, fn, packages, "def handler(event, context):\n    return 'B'\n")
    lam.update_function_configuration(FunctionName=fn, Timeout=20)
    lam.get_waiter("function_updated_v2").wait(FunctionName=fn)
    assert lam.publish_version(FunctionName=fn, Description="release 3")["Version"] == "3"
    lam.update_function_configuration(FunctionName=fn, Timeout=30)
    lam.get_waiter("function_updated_v2").wait(FunctionName=fn)
    ctx, _ = _delete_phase5(world, make_ctx, table, fn)

    fctx, _ = make_ctx("rollback-cleanup#1", world, journal=ctx.journal)
    published = _publishes(lam)
    event = "before-call.lambda.UpdateFunctionConfiguration"  # $LATEST's own settings back
    _restore_killed(lam, fctx, runbook, event, published, after=3)
    assert fctx.cursors["versions"][fn].keys() == {"1", "2", "3"}  # all journaled
    assert lam.get_function_configuration(FunctionName=fn)["Timeout"] == 20  # version 3's
    run(fctx, "restore_functions", rollback_params(runbook, "restore_functions"))
    assert len(published) == 3  # nothing published twice
    assert lam.get_function_configuration(FunctionName=fn)["Timeout"] == 30  # its own again


def _restored(world: Any, make_ctx: Any, runbook: Any) -> tuple[str, Any, list[Any]]:
    """The legacy function deleted and restored once; (fn, the restore's context, events)."""
    fn, table = legacy_function_of(runbook)
    ctx, _ = _delete_phase5(world, make_ctx, table, fn)
    fctx, events = make_ctx("rollback-cleanup#1", world, journal=ctx.journal)
    run(fctx, "restore_functions", rollback_params(runbook, "restore_functions"))
    return fn, fctx, events


def test_a_function_url_found_at_a_resume_is_made_like_the_archived_one(world, make_ctx, runbook):
    fn, _ = legacy_function_of(runbook)
    lam = world.client("lambda")
    cors = {"AllowOrigins": ["https://app.example.com"], "AllowMethods": ["GET"]}
    lam.update_function_url_config(FunctionName=fn, Qualifier="live", Cors=cors)
    fn, fctx, events = _restored(world, make_ctx, runbook)
    url = lam.get_function_url_config(FunctionName=fn, Qualifier="live")
    assert url["AuthType"] == "AWS_IAM" and url["Cors"] == cors
    # someone opened it while the restore was down; the resume finds it there
    lam.update_function_url_config(
        FunctionName=fn, Qualifier="live", AuthType="NONE", Cors={"AllowOrigins": ["*"]}
    )
    recorder = CallRecorder(world)
    recorder.client("lambda")  # the step's client (a Connection caches it): hooked too
    fctx.cursors["restored"] = []
    run(fctx, "restore_functions", rollback_params(runbook, "restore_functions"))
    calls = list(recorder.calls)

    again = lam.get_function_url_config(FunctionName=fn, Qualifier="live")
    assert again["AuthType"] == "AWS_IAM" and again["Cors"] == cors
    assert again["FunctionUrl"] == url["FunctionUrl"]  # updated, not made again
    said = _warnings(events)
    # (moto keeps one URL config per function, whatever the qualifier: the first URL of the
    # archive, the function's own, meets the change)
    assert any("function URL AuthType NONE -> AWS_IAM" in w for w in said), said
    lines = [e.message for e in events if isinstance(e, LogLine)]
    assert any("function URL Cors {'AllowOrigins': ['*']} -> " in m for m in lines), lines
    assert ("lambda", "UpdateFunctionUrlConfig") in {(s, o) for s, o, _ in calls}
    assert _uncovered(calls, runbook) == []


def test_an_event_source_mapping_found_at_a_resume_is_made_like_the_archived_one(
    world, make_ctx, runbook
):
    """A resume finds the mapping changed (batch size, disabled) and Updating: it waits until
    the mapping is settled (AWS refuses to update one in transition), then updates it."""
    _, fctx, events = _restored(world, make_ctx, runbook)
    _, table = legacy_function_of(runbook)
    lam = world.client("lambda")
    stream = world.client("dynamodb").describe_table(TableName=table)["Table"]["LatestStreamArn"]
    [mapping] = lam.list_event_source_mappings(EventSourceArn=stream)["EventSourceMappings"]
    assert mapping["BatchSize"] == 50 and mapping["State"] == "Enabled"
    lam.update_event_source_mapping(UUID=mapping["UUID"], BatchSize=5, Enabled=False)
    order: list[str] = []
    lam.meta.events.register(
        "before-call.lambda.UpdateEventSourceMapping", lambda **_: order.append("update")
    )

    def transitional(parsed: dict[str, Any], n: int) -> None:
        if n < 2:  # AWS: Disabling for a while after the change
            parsed["State"] = "Disabling"
            order.append("Disabling")

    rewrite_answer(lam, "GetEventSourceMapping", transitional)
    recorder = CallRecorder(world)
    recorder.client("lambda")  # the step's client (a Connection caches it): hooked too
    fctx.clock.sleep_real = lambda s: None  # the polls are what count, not the wall time
    fctx.cursors["restored"] = []
    fctx.cursors["mappings"] = {}
    run(fctx, "restore_functions", rollback_params(runbook, "restore_functions"))
    calls = list(recorder.calls)

    assert order == ["Disabling", "Disabling", "update"]
    [again] = lam.list_event_source_mappings(EventSourceArn=stream)["EventSourceMappings"]
    assert again["UUID"] == mapping["UUID"]  # updated, not made again
    assert again["BatchSize"] == 50 and again["State"] == "Enabled"
    assert list(fctx.cursors["mappings"].values()) == [mapping["UUID"]]
    lines = [e.message for e in events if isinstance(e, LogLine)]
    assert any(f"{mapping['UUID']} BatchSize 5 -> 50" in m for m in lines), lines
    assert any(f"{mapping['UUID']} Enabled False -> True" in m for m in lines), lines
    assert _uncovered(calls, runbook) == []


def test_a_repointed_mapping_found_on_the_new_stream_is_made_like_the_archived_one(
    world, make_ctx, runbook
):
    """A kept function's mapping of a legacy stream: killed after the mapping on the new
    stream was made, and that one changed before the resume; the resume updates it to the
    archived settings, then deletes the old one."""
    table = "construction-expenses-multi-table-works"
    reader = runbook.flags.functions[0]  # a kept function
    lam, ddb = world.client("lambda"), world.client("dynamodb")
    ddb.update_table(
        TableName=table, StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}
    )
    old_stream = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    old = lam.create_event_source_mapping(
        EventSourceArn=old_stream, FunctionName=reader, StartingPosition="TRIM_HORIZON",
        BatchSize=7, MaximumRetryAttempts=2,
    )  # fmt: skip
    ctx, _ = make_ctx("delete-deprecated-tables", world)
    go(ctx.journal)
    final_backups(world, ctx.journal, [table])
    run(ctx, "delete_tables", {"tables": [table], "backup_step": "final-backups"})

    def killed(**_: Any) -> None:
        raise Killed("killed")

    lam.meta.events.register("after-call.lambda.CreateEventSourceMapping", killed)
    rctx, events = make_ctx("rollback-cleanup#0", world, journal=ctx.journal)
    with pytest.raises(Killed):
        run(rctx, "restore_tables", rollback_params(runbook, "restore_tables"))
    lam.meta.events.unregister("after-call.lambda.CreateEventSourceMapping", killed)
    new_stream = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    [made] = lam.list_event_source_mappings(EventSourceArn=new_stream)["EventSourceMappings"]
    lam.update_event_source_mapping(UUID=made["UUID"], BatchSize=100, MaximumRetryAttempts=9)
    run(rctx, "restore_tables", rollback_params(runbook, "restore_tables"))

    [again] = lam.list_event_source_mappings(EventSourceArn=new_stream)["EventSourceMappings"]
    assert again["UUID"] == made["UUID"]
    assert (again["BatchSize"], again["MaximumRetryAttempts"]) == (7, 2)
    assert rctx.cursors["repointed"] == {old["UUID"]: made["UUID"]}
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_event_source_mapping(UUID=old["UUID"])
    lines = [e.message for e in events if isinstance(e, LogLine)]
    assert any(f"{made['UUID']} BatchSize 100 -> 7" in m for m in lines), lines
