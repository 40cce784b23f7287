"""Issue 8, item 2: flags reach the code that is actually invoked (aliases, versions)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.aws.invocations import parse_function_arn, qualifier_kind
from engine.core.context import NeedsAcceptance
from engine.rehearsal.seed import WorldShape, seed_world
from tests.support.actions import SECRET, run, step_params
from tests.support.aws_inject import fail_first, rewrite_answer

COMPANY_EXPENSES = "construction-expenses-company-expenses"


@pytest.fixture
def aliased(aws, runbook):
    """Company functions invoked by the API through the alias `live`."""
    seed_world(aws, runbook, "world-alias", shape=WorldShape(alias="live"))
    return aws


def live_env(conn: Any, fn: str, qualifier: str = "live") -> dict[str, str]:
    lam = conn.client("lambda")
    return lam.get_function_configuration(FunctionName=fn, Qualifier=qualifier)["Environment"][
        "Variables"
    ]


def alias_version(conn: Any, fn: str) -> str:
    return conn.client("lambda").get_alias(FunctionName=fn, Name="live")["FunctionVersion"]


def test_qualifiers_parsed_from_integration_uris_and_arns():
    arn = "arn:aws:lambda:us-east-1:123456789012:function:fn-a"
    uri = f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{arn}/invocations"
    assert parse_function_arn(uri) == ("fn-a", "")
    assert parse_function_arn(uri.replace(arn, arn + ":live")) == ("fn-a", "alias:live")
    assert parse_function_arn(uri.replace(arn, arn + ":7")) == ("fn-a", "version:7")
    assert parse_function_arn(arn + ":$LATEST") == ("fn-a", "")
    assert qualifier_kind("2024-prod") == "alias:2024-prod"
    assert parse_function_arn("arn:aws:s3:::bucket") is None


def test_set_flags_publishes_and_moves_the_invoked_alias(aliased, make_ctx, runbook, tmp_path):
    fns = runbook.flags.functions
    before = {fn: live_env(aliased, fn) for fn in fns}
    ctx, events = make_ctx("deploy-feature-flags", aliased)
    s = run(ctx, "set_flags", step_params(runbook, "deploy-feature-flags"))
    assert s["unreachable"] == []
    assert set(s["aliases_moved"]) == {f"{fn}:live" for fn in fns}
    for fn in fns:
        entry = ctx.cursors["flags"][fn]
        assert entry["aliases"] == {"live": "1"}  # the seeded release, journaled
        assert alias_version(aliased, fn) == entry["published"] != "1"
        env = live_env(aliased, fn)  # what the API actually runs now
        assert env["DUAL_WRITE_ENABLED"] == "false" and env["READ_PERCENT"] == "0"
        assert {k: env[k] for k in before[fn]} == before[fn]  # non-flag variables kept

    ctx2, events2 = make_ctx("enable-dual-write", aliased, journal=ctx.journal)
    run(ctx2, "set_flags", step_params(runbook, "enable-dual-write"))
    after_deploy = {fn: ctx.cursors["flags"][fn]["published"] for fn in fns}
    for fn in fns:
        assert ctx2.cursors["flags"][fn]["aliases"] == {"live": after_deploy[fn]}
        assert live_env(aliased, fn)["DUAL_WRITE_ENABLED"] == "true"
        assert live_env(aliased, fn)["API_SIGNING_SECRET"] == SECRET

    # re-running the step publishes nothing new and leaves the alias where it is
    lam = aliased.client("lambda")
    n = len(lam.list_versions_by_function(FunctionName=fns[0])["Versions"])
    for entry in ctx2.cursors["flags"].values():
        entry["applied"] = False
    run(ctx2, "set_flags", step_params(runbook, "enable-dual-write"))
    assert len(lam.list_versions_by_function(FunctionName=fns[0])["Versions"]) == n

    # the flag rollback moves the alias back to the version before enable-dual-write
    rctx, _ = make_ctx("rollback-dual-write#0", aliased, journal=ctx.journal)
    r = run(rctx, "restore_flags", {"steps": ["enable-dual-write"]})
    assert sorted(r["aliases_restored"]) == sorted(f"{fn}:live" for fn in fns)
    for fn in fns:
        assert alias_version(aliased, fn) == after_deploy[fn]
        assert live_env(aliased, fn)["DUAL_WRITE_ENABLED"] == "false"
        assert live_env(aliased, fn, "$LATEST")["DUAL_WRITE_ENABLED"] == "false"

    # rolling back past the deployment: the alias is back on the seeded release
    rctx2, _ = make_ctx("rollback-x#0", aliased, journal=ctx.journal)
    run(rctx2, "restore_flags", {"steps": ["enable-dual-write", "deploy-feature-flags"]})
    assert {fn: alias_version(aliased, fn) for fn in fns} == dict.fromkeys(fns, "1")
    assert {fn: live_env(aliased, fn) for fn in fns} == before

    # flags only: no other variable's value reaches the journal, the events or the log
    text = (tmp_path / "journal.toml").read_text()
    assert SECRET not in text and "API_SIGNING_SECRET" not in text
    assert SECRET not in repr(events + events2)


def test_publish_waits_out_an_update_in_progress_and_conflicts(aliased, make_ctx, runbook):
    lam = aliased.client("lambda")
    conflicts = fail_first(lam, "PublishVersion", "ResourceConflictException", 2, 409)
    alias_conflicts = fail_first(lam, "UpdateAlias", "ResourceConflictException", 1, 409)

    def in_progress(parsed: dict[str, Any], n: int) -> None:
        if n % 3 == 1:  # every update is seen in progress once before it settles
            parsed["LastUpdateStatus"] = "InProgress"

    polls = rewrite_answer(lam, "GetFunctionConfiguration", in_progress)
    ctx, _ = make_ctx("enable-dual-write", aliased)
    ctx.clock.sleep_real = lambda s: None  # backoff is wall time; the retries are what count
    s = run(ctx, "set_flags", {"values": {"DUAL_WRITE_ENABLED": "true"}})
    assert s["changed"] == 4 and len(s["aliases_moved"]) == 4
    assert len(conflicts) >= 2 + 8 and len(alias_conflicts) == 1 + 4
    assert len(polls) > 8
    for fn in runbook.flags.functions:
        assert live_env(aliased, fn)["DUAL_WRITE_ENABLED"] == "true"


def test_an_alias_moves_only_once_its_new_version_is_active(aliased, make_ctx, runbook):
    """A published version is Pending while Lambda prepares it (VPC, SnapStart); an alias
    moved to it then would fail its invocations."""
    lam = aliased.client("lambda")
    seen: list[tuple[str, str, str]] = []  # (what, function, version)

    def pending_once(parsed: dict[str, Any], n: int) -> None:
        version, fn = parsed.get("Version", "$LATEST"), parsed.get("FunctionName", "")
        if version == "$LATEST":
            return
        if ("pending", fn, version) not in seen:
            parsed["State"] = "Pending"
            seen.append(("pending", fn, version))
        else:
            seen.append(("active", fn, version))

    rewrite_answer(lam, "GetFunctionConfiguration", pending_once)
    lam.meta.events.register(
        "provide-client-params.lambda.UpdateAlias",
        lambda params, **_: seen.append(
            ("move", params["FunctionName"], params["FunctionVersion"])
        ),
    )
    ctx, _ = make_ctx("enable-dual-write", aliased)
    ctx.clock.sleep_real = lambda s: None  # the poll's wait is wall time; the order counts
    s = run(ctx, "set_flags", {"values": {"DUAL_WRITE_ENABLED": "true"}})
    moves = [entry for entry in seen if entry[0] == "move"]
    assert len(moves) == len(s["aliases_moved"]) == 4
    for _, fn, version in moves:
        assert seen.index(("active", fn, version)) < seen.index(("move", fn, version)), seen


def test_update_that_failed_is_an_error_not_a_success(aliased, make_ctx):
    lam = aliased.client("lambda")

    def failed(parsed: dict[str, Any], n: int) -> None:
        if n >= 2:
            parsed["LastUpdateStatus"] = "Failed"
            parsed["LastUpdateStatusReason"] = "injected: KMS key disabled"

    rewrite_answer(lam, "GetFunctionConfiguration", failed)
    ctx, _ = make_ctx("enable-dual-write", aliased)
    with pytest.raises(RuntimeError, match="update failed: injected"):
        run(ctx, "set_flags", {"values": {"DUAL_WRITE_ENABLED": "true"}})


def _sqs_arn(conn: Any) -> str:
    sqs = conn.client("sqs")
    url = sqs.create_queue(QueueName="expense-events")["QueueUrl"]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]


def test_inventory_reports_invocations_and_waits_on_a_fixed_version(aliased, make_ctx, runbook):
    ctx, _ = make_ctx("inventory", aliased)
    s = run(ctx, "inventory_diff", {})
    assert s["needs_acceptance"] == [] and s["api_problems"] == 0
    assert s["invocations"][COMPANY_EXPENSES] == [
        "alias live from DELETE /company/expenses, GET /company/expenses, "
        "POST /company/expenses, PUT /company/expenses"
    ]

    # an event source that invokes version 1 by number: no flag can ever reach it
    aliased.client("lambda").create_event_source_mapping(
        EventSourceArn=_sqs_arn(aliased), FunctionName=f"{COMPANY_EXPENSES}:1"
    )
    ctx2, _ = make_ctx("inventory", aliased)
    with pytest.raises(NeedsAcceptance, match="fixed version 1") as info:
        run(ctx2, "inventory_diff", {})
    assert info.value.summary["needs_acceptance"][0].startswith(COMPANY_EXPENSES)
    artifact = json.loads(ctx2.artifact(info.value.summary["artifact"]).read_text())
    assert any("event source" in line for line in artifact["invocations"][COMPANY_EXPENSES])

    # set_flags says so too: the flag is set, moved to `live`, and version 1 is unreachable
    fctx, events = make_ctx("enable-dual-write", aliased)
    s = run(fctx, "set_flags", {"values": {"DUAL_WRITE_ENABLED": "true"}})
    assert s["unreachable"] == [f"{COMPANY_EXPENSES}:1"]
    assert any("do not reach it" in getattr(e, "message", "") for e in events)


def test_inventory_needs_acceptance_through_the_engine(aws, tmp_path, runbook):
    """The run waits at the Day-1 inventory; `ack` accepts it and the run goes on."""
    from engine.plan.loader import default_runbook_path
    from tests.support.world import seeded_engine

    engine = seeded_engine(aws, tmp_path / "j.toml", default_runbook_path(), "w-acc", 1000.0)
    lam = aws.client("lambda")
    lam.publish_version(FunctionName=COMPANY_EXPENSES)
    lam.create_event_source_mapping(
        EventSourceArn=_sqs_arn(aws), FunctionName=f"{COMPANY_EXPENSES}:1"
    )
    engine.journal.gate("pre-migration-approval").decision = "GO"
    outcome = engine.run(only="inventory", confirm=lambda *_: True)
    assert outcome.status == "waiting" and str(outcome.waiting) == "step inventory"
    assert "fixed version 1" in outcome.message
    engine.ack("inventory", "ops", "the SQS consumer is pinned on purpose; no flags used")
    outcome = engine.run(only="inventory", confirm=lambda *_: True)
    assert outcome.status == "done", outcome
    state = engine.journal.steps["inventory"]
    assert state.status == "done" and state.summary["accepted_by"] == "ops"


def test_resume_after_a_crash_between_publish_and_alias_move(aliased, make_ctx, runbook):
    fn = runbook.flags.functions[0]
    lam = aliased.client("lambda")
    ctx, _ = make_ctx("enable-dual-write", aliased)
    run(ctx, "set_flags", {"values": {"DUAL_WRITE_ENABLED": "true"}})
    entry = ctx.cursors["flags"][fn]
    published = entry["published"]
    # the crash: published and journaled, the alias not moved yet
    lam.update_alias(FunctionName=fn, Name="live", FunctionVersion="1")
    entry["applied"] = False
    entry.pop("moved")
    n = len(lam.list_versions_by_function(FunctionName=fn)["Versions"])
    run(ctx, "set_flags", {"values": {"DUAL_WRITE_ENABLED": "true"}})
    entry = ctx.cursors["flags"][fn]  # as journaled by that run
    assert alias_version(aliased, fn) == published  # moved, with no second version
    assert len(lam.list_versions_by_function(FunctionName=fn)["Versions"]) == n
    assert entry["aliases"] == {"live": "1"}  # the prior survives the resume

    # someone flipped the flag on $LATEST since: the published version is stale
    env = lam.get_function_configuration(FunctionName=fn)["Environment"]["Variables"]
    lam.update_function_configuration(
        FunctionName=fn, Environment={"Variables": {**env, "DUAL_WRITE_ENABLED": "false"}}
    )
    entry["applied"] = False
    run(ctx, "set_flags", {"values": {"DUAL_WRITE_ENABLED": "true"}})
    entry = ctx.cursors["flags"][fn]
    assert entry["published"] != published
    assert alias_version(aliased, fn) == entry["published"]
    assert live_env(aliased, fn)["DUAL_WRITE_ENABLED"] == "true"
