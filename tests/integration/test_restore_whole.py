"""Issue 19, item 2 (and 9's world): a deleted legacy function and its legacy table come back
whole. The seeded world's legacy function (engine/rehearsal/legacy_shape.py) runs on a runtime
AWS blocks creates on, in a VPC, with a layer, two versions behind the alias `live` (90/10), a
function URL on the alias, the API's legacy route invoking it through the alias (with its
permission), and a mapping from the legacy table's stream to the alias."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.rehearsal.legacy_shape import legacy_function_of
from tests.support.actions import final_backups, go, rollback_params, run, step_params
from tests.support.aws_inject import rewrite_answer

RUNTIME = "python3.8"


class Killed(BaseException):
    """The process dying right after an answer: nothing after it runs, nothing is journaled."""


def _live_state(conn: Any, fn: str) -> dict[str, Any]:
    lam = conn.client("lambda")
    conf = lam.get_function_configuration(FunctionName=fn)
    alias = lam.get_alias(FunctionName=fn, Name="live")
    policy = json.loads(lam.get_policy(FunctionName=fn, Qualifier="live")["Policy"])
    return {
        "vpc": (conf["VpcConfig"]["SubnetIds"], conf["VpcConfig"]["SecurityGroupIds"]),
        "layers": [layer["Arn"] for layer in conf["Layers"]],
        "timeout": conf["Timeout"],
        "tags": {
            k: v
            for k, v in lam.get_function(FunctionName=fn)["Tags"].items()
            if not k.startswith("aws:")
        },
        "weights": list(alias["RoutingConfig"]["AdditionalVersionWeights"].values()),
        "sids": sorted(st["Sid"] for st in policy["Statement"]),
        "url_auth": lam.get_function_url_config(FunctionName=fn, Qualifier="live")["AuthType"],
    }


def _delete_phase5(world: Any, make_ctx: Any, runbook: Any, table: str, fn: str) -> Any:
    ctx, _ = make_ctx("delete-deprecated-functions", world)
    go(ctx.journal)
    run(ctx, "delete_functions", {"functions": [fn], "delete_log_groups": True})
    tctx, _ = make_ctx("delete-deprecated-tables", world, journal=ctx.journal)
    final_backups(world, ctx.journal, [table])
    run(tctx, "delete_tables", {"tables": [table], "backup_step": "final-backups"})
    return ctx


def test_a_deleted_legacy_function_comes_back_with_aliases_permissions_url_and_mapping(
    world, make_ctx, runbook
):
    fn, table = legacy_function_of(runbook)
    lam, ddb = world.client("lambda"), world.client("dynamodb")
    before = _live_state(world, fn)
    assert lam.get_function_configuration(FunctionName=fn)["Runtime"] == RUNTIME
    old_stream = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    [old_mapping] = lam.list_event_source_mappings(EventSourceArn=old_stream)["EventSourceMappings"]
    old_url = lam.get_function_url_config(FunctionName=fn, Qualifier="live")["FunctionUrl"]

    ctx = _delete_phase5(world, make_ctx, runbook, table, fn)
    archive = json.loads(ctx.artifact(f"{ctx.cursors['archive_dir']}/{fn}.json").read_text())
    assert [v["Version"] for v in archive["versions"]] == ["1", "2"]
    assert archive["aliases"][0]["Name"] == "live"
    assert archive["aliases"][0]["RoutingConfig"] == {"AdditionalVersionWeights": {"1": 0.1}}
    assert set(archive["policies"]) >= {"live"} and archive["urls"]["live"]["AuthType"]
    assert [m["UUID"] for m in archive["mappings"]] == [old_mapping["UUID"]]
    assert archive["configuration"]["Layers"] and archive["configuration"]["VpcConfig"]
    # AWS keeps a deleted function's mappings, pointing at nothing: cleanup deletes them
    assert lam.list_event_source_mappings()["EventSourceMappings"] == []

    # the Phase 5 rollback, in the runbook's order: tables, then functions
    rctx, _ = make_ctx("rollback-cleanup#0", world, journal=ctx.journal)
    run(rctx, "restore_tables", rollback_params(runbook, "restore_tables"))
    new_stream = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    assert new_stream and new_stream != old_stream
    fctx, _ = make_ctx("rollback-cleanup#1", world, journal=ctx.journal)
    summary = run(fctx, "restore_functions", rollback_params(runbook, "restore_functions"))

    assert summary["restored"] == [fn] and summary["aliases_restored"] == 1
    assert summary["runtime_replaced"] == {fn: f"{RUNTIME} -> python3.12"}
    assert lam.get_function_configuration(FunctionName=fn)["Runtime"] == "python3.12"
    assert _live_state(world, fn) == before  # VPC, layers, tags, weights, permissions, URL
    versions = fctx.cursors["versions"][fn]
    alias = lam.get_alias(FunctionName=fn, Name="live")
    assert alias["FunctionVersion"] == versions["2"]
    assert alias["RoutingConfig"]["AdditionalVersionWeights"] == {versions["1"]: 0.1}
    # the mapping reads the restored table's new stream, through the alias's new version
    [mapping] = lam.list_event_source_mappings(EventSourceArn=new_stream)["EventSourceMappings"]
    assert mapping["BatchSize"] == old_mapping["BatchSize"]
    assert mapping["FunctionArn"].split(":")[6] == fn
    assert fctx.cursors["mappings"] == {old_mapping["UUID"]: mapping["UUID"]}
    # AWS gives a new function URL, never the old one: the summary names it
    assert (
        summary["urls"][f"{fn}:live"]
        == lam.get_function_url_config(FunctionName=fn, Qualifier="live")["FunctionUrl"]
    )
    assert old_url  # (moto may reuse none; the log says when it differs)

    # a resume after a crash before the journal said "restored" creates nothing twice
    fctx.cursors["restored"] = []
    run(fctx, "restore_functions", rollback_params(runbook, "restore_functions"))
    published = [
        v["Version"]
        for v in lam.list_versions_by_function(FunctionName=fn)["Versions"]
        if v["Version"] != "$LATEST"
    ]
    assert len(published) == 2
    assert (
        len(lam.list_event_source_mappings(EventSourceArn=new_stream)["EventSourceMappings"]) == 1
    )
    assert len(lam.list_aliases(FunctionName=fn)["Aliases"]) == 1


def test_a_kill_between_publishes_adopts_the_published_version(world, make_ctx, runbook):
    """The journal lost the line of a version published before a kill: adopted, not
    published again."""
    fn, table = legacy_function_of(runbook)
    ctx = _delete_phase5(world, make_ctx, runbook, table, fn)
    rctx, _ = make_ctx("rollback-cleanup#0", world, journal=ctx.journal)
    run(rctx, "restore_tables", rollback_params(runbook, "restore_tables"))
    fctx, _ = make_ctx("rollback-cleanup#1", world, journal=ctx.journal)
    lam = world.client("lambda")
    published: list[str] = []
    lam.meta.events.register(
        "before-call.lambda.PublishVersion", lambda **_: published.append("publish")
    )

    def kill_after_first_publish(**_: Any) -> None:
        if len(published) == 1:
            raise Killed("killed")

    lam.meta.events.register("after-call.lambda.PublishVersion", kill_after_first_publish)
    with pytest.raises(Killed):
        run(fctx, "restore_functions", rollback_params(runbook, "restore_functions"))
    lam.meta.events.unregister("after-call.lambda.PublishVersion", kill_after_first_publish)
    fctx.cursors["versions"] = {}  # the journal never saw the first publish
    run(fctx, "restore_functions", rollback_params(runbook, "restore_functions"))
    assert len(published) == 2  # one before the kill, one after: never a third
    assert fctx.cursors["versions"][fn] == {"1": "1", "2": "2"}


def test_without_a_replacement_a_blocked_runtime_stops_before_any_create(world, make_ctx, runbook):
    fn, _ = legacy_function_of(runbook)
    others = [f for f in runbook.inventory.select_functions("@deprecated") if f != fn][:2]
    ctx, _ = make_ctx("delete-deprecated-functions", world)
    go(ctx.journal)
    run(ctx, "delete_functions", {"functions": [*others, fn]})
    fctx, _ = make_ctx("rollback-cleanup#1", world, journal=ctx.journal)
    params = {**rollback_params(runbook, "restore_functions"), "replacement_runtimes": {}}
    with pytest.raises(ValueError, match=r"python3\.8.*replacement_runtimes"):
        run(fctx, "restore_functions", params)
    names = {f["FunctionName"] for f in world.client("lambda").list_functions()["Functions"]}
    assert not names & {fn, *others}  # nothing half-restored


def test_moto_refuses_a_blocked_runtime_as_aws_does(world, runbook):
    lam = world.client("lambda")
    role = lam.get_function_configuration(FunctionName=runbook.flags.functions[0])["Role"]
    with pytest.raises(lam.exceptions.InvalidParameterValueException, match=r"python3\.8"):
        lam.create_function(
            FunctionName="new-on-old-runtime",
            Runtime=RUNTIME,
            Role=role,
            Handler="index.handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        )


def test_step_params_keep_the_delete_order(runbook):
    """Functions are deleted before their tables, and restored after them: a mapping is made
    again on the restored table's stream."""
    order = [s.id for s in runbook.steps]
    assert order.index("delete-deprecated-functions") < order.index("delete-deprecated-tables")
    actions = [s.action for s in runbook.find_rollback("rollback-cleanup").steps]
    assert actions.index("restore_tables") < actions.index("restore_functions")
    assert step_params(runbook, "delete-deprecated-functions")["functions"] == ["@deprecated"]


def test_a_kept_functions_mapping_on_a_legacy_stream_is_repointed(world, make_ctx, runbook):
    """The function is kept, so its mapping outlives the deleted table and reads a disabled
    stream; the table's restore makes it again on the new stream and deletes the old one."""
    table = "construction-expenses-multi-table-works"
    reader = runbook.flags.functions[0]  # a kept function
    lam, ddb = world.client("lambda"), world.client("dynamodb")
    ddb.update_table(
        TableName=table, StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}
    )
    old_stream = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    old = lam.create_event_source_mapping(
        EventSourceArn=old_stream, FunctionName=reader, StartingPosition="TRIM_HORIZON",
        BatchSize=7,
    )  # fmt: skip
    ctx, _ = make_ctx("delete-deprecated-tables", world)
    go(ctx.journal)
    final_backups(world, ctx.journal, [table])
    run(ctx, "delete_tables", {"tables": [table], "backup_step": "final-backups"})
    archive = json.loads(
        ctx.artifact(f"{ctx.cursors['archive_dir']}/{table}.table.json").read_text()
    )
    assert archive["stream_arn"] == old_stream
    assert [m["UUID"] for m in archive["stream_mappings"]] == [old["UUID"]]
    assert lam.get_event_source_mapping(UUID=old["UUID"])  # kept: it outlives the table

    rctx, _ = make_ctx("rollback-cleanup#0", world, journal=ctx.journal)
    summary = run(rctx, "restore_tables", rollback_params(runbook, "restore_tables"))
    assert summary["mappings_repointed"] == 1
    new_stream = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    assert new_stream != old_stream
    [moved] = lam.list_event_source_mappings(EventSourceArn=new_stream)["EventSourceMappings"]
    assert moved["BatchSize"] == 7 and moved["FunctionArn"].endswith(f":function:{reader}")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_event_source_mapping(UUID=old["UUID"])
    # a re-run after a crash before "restored" was journaled makes no second mapping
    rctx.cursors["restored"] = []
    rctx.cursors["repointed"] = {}
    run(rctx, "restore_tables", rollback_params(runbook, "restore_tables"))
    assert (
        len(lam.list_event_source_mappings(EventSourceArn=new_stream)["EventSourceMappings"]) == 1
    )


def test_an_alias_waits_for_its_version_to_be_active(world, make_ctx, runbook):
    """AWS: a published version may be Pending a while (SnapStart); CreateAlias on it is
    refused. The restore reads the version's State first (moto is Active at once)."""
    fn, table = legacy_function_of(runbook)
    ctx = _delete_phase5(world, make_ctx, runbook, table, fn)
    rctx, _ = make_ctx("rollback-cleanup#0", world, journal=ctx.journal)
    run(rctx, "restore_tables", rollback_params(runbook, "restore_tables"))
    lam = world.client("lambda")
    order: list[str] = []
    lam.meta.events.register("before-call.lambda.CreateAlias", lambda **_: order.append("alias"))

    def pending(parsed: dict[str, Any], n: int) -> None:
        if parsed.get("Version", "$LATEST") != "$LATEST" and order.count("Pending") < 3:
            parsed["State"] = "Pending"
            order.append("Pending")

    rewrite_answer(lam, "GetFunctionConfiguration", pending)
    fctx, _ = make_ctx("rollback-cleanup#1", world, journal=ctx.journal)
    fctx.clock.sleep_real = lambda s: None  # the polls are what count, not the wall time
    run(fctx, "restore_functions", rollback_params(runbook, "restore_functions"))
    assert order == ["Pending", "Pending", "Pending", "alias"]


def test_a_stream_enabled_by_a_request_whose_answer_was_lost_counts_as_enabled(
    world, make_ctx, runbook
):
    """An UpdateTable whose answer is lost after AWS applied it is sent again, and AWS refuses
    to enable a stream twice: that refusal, with the stream enabled, means done (a whole run
    through a proxy breaking answers waited 900 s on it)."""
    _, table = legacy_function_of(runbook)
    ctx, _ = make_ctx("delete-deprecated-tables", world)
    go(ctx.journal)
    final_backups(world, ctx.journal, [table])
    run(ctx, "delete_tables", {"tables": [table], "backup_step": "final-backups"})
    ddb = world.client("dynamodb")
    first_try = world.client("dynamodb")  # the request that applied; its answer is lost
    sent: list[str] = []

    def apply_first(params: dict[str, Any], **_: Any) -> None:
        if "StreamSpecification" in params and not sent:
            sent.append("applied")
            first_try.update_table(**params)

    ddb.meta.events.register("provide-client-params.dynamodb.UpdateTable", apply_first)
    rctx, _ = make_ctx("rollback-cleanup#0", world, journal=ctx.journal)
    rctx.clock.sleep_real = lambda s: pytest.fail("waited on a stream that was enabled")
    assert run(rctx, "restore_tables", rollback_params(runbook, "restore_tables"))["restored"]
    assert sent == ["applied"]
    spec = ddb.describe_table(TableName=table)["Table"]["StreamSpecification"]
    assert spec["StreamEnabled"] is True
