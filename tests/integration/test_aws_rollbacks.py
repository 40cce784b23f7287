"""Issue 19, deliverables 2 and 3: rollbacks AWS accepts (reserved `aws:` tags dropped), every
UpdateFunctionConfiguration guarded by RevisionId, and environments under a customer KMS key
never written flags-only nor archived empty."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from engine.aws.environment import EnvironmentSealed
from engine.aws.tags import user_tag_list, user_tags
from engine.core.context import NeedsAcceptance
from engine.rehearsal.seed import LAMBDA_ROLE
from engine.rehearsal.seed_lambda import as_stack, handler_zip
from tests.support.actions import SECRET, env, go, rollback_params, run
from tests.support.aws_inject import rewrite_answer


def _role(conn: Any) -> str:
    return conn.client("iam").get_role(RoleName=LAMBDA_ROLE)["Role"]["Arn"]


def test_reserved_tags_are_told_apart_in_any_case():
    tags = {"aws:cloudformation:stack-name": "s", "AWS:Other": "x", "team": "t", "awsome": "y"}
    assert user_tags(tags) == (
        {"team": "t", "awsome": "y"},
        ["AWS:Other", "aws:cloudformation:stack-name"],
    )
    kept, dropped = user_tag_list([{"Key": "Aws:x", "Value": "1"}, {"Key": "k", "Value": "2"}])
    assert kept == [{"Key": "k", "Value": "2"}] and dropped == ["Aws:x"]


def test_moto_refuses_reserved_lambda_tags_as_aws_does(world):
    lam = world.client("lambda")
    kwargs = {
        "FunctionName": "tagged-by-hand",
        "Runtime": "python3.12",
        "Role": _role(world),
        "Handler": "index.handler",
        "Code": {"ZipFile": handler_zip()},
    }
    with pytest.raises(ClientError) as refused:
        lam.create_function(**kwargs, Tags={"aws:cloudformation:stack-name": "x"})
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValueException"
    arn = lam.create_function(**kwargs, Tags={"team": "t"})["FunctionArn"]
    with pytest.raises(ClientError) as refused:
        lam.tag_resource(Resource=arn, Tags={"AWS:Anything": "x"})
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValueException"
    # the seed stands in for CloudFormation, which may set them
    with as_stack(lam):
        lam.tag_resource(Resource=arn, Tags={"aws:cloudformation:logical-id": "Fn"})
    with pytest.raises(ClientError):  # only while the seed stands in for CloudFormation
        lam.tag_resource(Resource=arn, Tags={"aws:cloudformation:logical-id": "Fn"})
    assert lam.list_tags(Resource=arn)["Tags"] == {
        "team": "t",
        "aws:cloudformation:logical-id": "Fn",
    }


def test_moto_keeps_a_revision_per_function_and_refuses_a_stale_one(world, runbook):
    lam = world.client("lambda")
    fn = runbook.flags.functions[0]
    first = lam.get_function_configuration(FunctionName=fn)["RevisionId"]
    assert first and lam.get_function(FunctionName=fn)["Configuration"]["RevisionId"] == first
    lam.update_function_configuration(FunctionName=fn, Timeout=9, RevisionId=first)
    second = lam.get_function_configuration(FunctionName=fn)["RevisionId"]
    assert second != first
    with pytest.raises(ClientError) as stale:
        lam.update_function_configuration(FunctionName=fn, Timeout=10, RevisionId=first)
    assert stale.value.response["Error"]["Code"] == "PreconditionFailedException"
    assert lam.get_function_configuration(FunctionName=fn)["Timeout"] == 9


def test_restored_function_and_table_come_back_without_aws_tags(world, make_ctx, runbook):
    """The seeded world carries CloudFormation's tags; AWS (and moto's fidelity layer) refuses
    them from a user, so a restore that sent them would stop rollback-cleanup partway."""
    lam = world.client("lambda")
    fn = runbook.inventory.select_functions("@deprecated")[0]
    seeded = lam.get_function(FunctionName=fn)["Tags"]
    assert "aws:cloudformation:stack-name" in seeded and seeded["team"] == "expenses"
    ctx, _ = make_ctx("delete-deprecated-functions", world)
    go(ctx.journal)
    run(ctx, "delete_functions", {"functions": [fn]})
    archive = json.loads(ctx.artifact(f"{ctx.cursors['archive_dir']}/{fn}.json").read_text())
    assert archive["tags"] == seeded  # kept as found

    sent: list[dict[str, Any]] = []
    lam.meta.events.register(
        "before-call.lambda.CreateFunction", lambda params, **_: sent.append(params)
    )
    rctx, events = make_ctx("rollback-cleanup#1", world, journal=ctx.journal)
    rctx.clock.sleep_real = lambda s: None
    r = run(rctx, "restore_functions", rollback_params(runbook, "restore_functions"))
    assert r["restored"] == [fn] and len(sent) == 1
    assert lam.get_function(FunctionName=fn)["Tags"] == {"team": "expenses"}
    said = [e.message for e in events if getattr(e, "message", None)]
    assert any("aws:cloudformation:stack-name" in t and "not restored" in t for t in said)


def test_a_deploy_between_read_and_write_is_detected_never_overwritten(world, make_ctx, runbook):
    fn = runbook.flags.functions[0]
    lam = world.client("lambda")
    deployer = world.session.client(
        "lambda", endpoint_url=world.endpoint_url
    )  # another client: the pipeline
    deployed: list[str] = []

    def deploy_first(params: Any, **_: Any) -> None:
        if not deployed:
            current = env(world, fn)
            deployer.update_function_configuration(
                FunctionName=fn, Environment={"Variables": {**current, "RELEASE": "2024.11"}}
            )
            deployed.append(fn)

    lam.meta.events.register("before-call.lambda.UpdateFunctionConfiguration", deploy_first)
    ctx, _ = make_ctx("deploy-feature-flags", world)
    ctx.clock.sleep_real = lambda s: None
    with pytest.raises(RuntimeError, match="changed between reading and writing"):
        run(ctx, "set_flags", {"values": {"DUAL_WRITE_ENABLED": "false"}, "functions": [fn]})
    after = env(world, fn)
    assert deployed and after["RELEASE"] == "2024.11"  # the deploy stands
    assert "DUAL_WRITE_ENABLED" not in after  # nothing of ours was written over it
    # run again: the flags are merged into the deployed configuration
    ctx.state.status = "running"
    run(ctx, "set_flags", {"values": {"DUAL_WRITE_ENABLED": "false"}, "functions": [fn]})
    after = env(world, fn)
    assert after["RELEASE"] == "2024.11" and after["DUAL_WRITE_ENABLED"] == "false"
    assert after["API_SIGNING_SECRET"] == SECRET


def _unreadable(fn: str):
    """AWS's answer to a caller without kms:Decrypt on the function's customer key."""

    def change(parsed: dict[str, Any], n: int) -> None:
        conf = parsed.get("Configuration", parsed)
        if conf.get("FunctionName") == fn:
            conf["KMSKeyArn"] = "arn:aws:kms:us-east-1:123456789012:key/1111-2222"
            conf["Environment"] = {
                "Error": {
                    "ErrorCode": "AccessDeniedException",
                    "Message": "Lambda was unable to decrypt the environment variables",
                }
            }

    return change


def test_unreadable_environment_is_never_written_nor_archived(world, make_ctx, runbook):
    lam = world.client("lambda")
    flag_fn = runbook.flags.functions[0]
    old_fn = runbook.inventory.select_functions("@deprecated")[0]
    before = {fn: env(world, fn) for fn in (flag_fn, old_fn)}
    for fn in (flag_fn, old_fn):
        rewrite_answer(lam, "GetFunctionConfiguration", _unreadable(fn))
        rewrite_answer(lam, "GetFunction", _unreadable(fn))
    writes: list[Any] = []
    lam.meta.events.register(
        "before-call.lambda.UpdateFunctionConfiguration", lambda params, **_: writes.append(params)
    )

    # Day 1 says so and waits for a human
    ictx, _ = make_ctx("inventory", world)
    with pytest.raises(NeedsAcceptance) as waiting:
        run(ictx, "inventory_diff", {})
    needs = waiting.value.summary["needs_acceptance"]
    for fn in (flag_fn, old_fn):
        assert any(line.startswith(f"{fn}: its environment cannot be read") for line in needs)

    ctx, _ = make_ctx("deploy-feature-flags", world)
    with pytest.raises(EnvironmentSealed, match="nothing written"):
        run(ctx, "set_flags", {"values": {"DUAL_WRITE_ENABLED": "false"}, "functions": [flag_fn]})
    assert writes == []

    dctx, _ = make_ctx("delete-deprecated-functions", world)
    go(dctx.journal)
    with pytest.raises(EnvironmentSealed, match="not archived, not deleted"):
        run(dctx, "delete_functions", {"functions": [old_fn]})
    assert lam.get_function(FunctionName=old_fn)  # still there
    params = world.client("ssm").describe_parameters()["Parameters"]
    assert not [p for p in params if old_fn in p["Name"]]  # no empty archive
    reader = world.session.client("lambda", endpoint_url=world.endpoint_url)  # no rewrite
    for fn in (flag_fn, old_fn):
        conf = reader.get_function_configuration(FunctionName=fn)
        assert conf["Environment"]["Variables"] == before[fn]


def test_customer_key_environment_waits_for_a_human_then_keeps_every_variable(
    world, make_ctx, runbook
):
    lam = world.client("lambda")
    fn = runbook.flags.functions[0]
    key = "arn:aws:kms:us-east-1:123456789012:key/3333-4444"
    before = env(world, fn)

    def keyed(parsed: dict[str, Any], n: int) -> None:  # moto does not store KMSKeyArn on update
        conf = parsed.get("Configuration", parsed)
        if conf.get("FunctionName") == fn:
            conf["KMSKeyArn"] = key

    rewrite_answer(lam, "GetFunctionConfiguration", keyed)
    rewrite_answer(lam, "GetFunction", keyed)
    ictx, _ = make_ctx("inventory", world)
    with pytest.raises(NeedsAcceptance) as waiting:
        run(ictx, "inventory_diff", {})
    assert any(
        line.startswith(f"{fn}: its environment is encrypted with the customer key {key}")
        for line in waiting.value.summary["needs_acceptance"]
    )
    ctx, _ = make_ctx("deploy-feature-flags", world)
    run(ctx, "set_flags", {"values": {"DUAL_WRITE_ENABLED": "false"}, "functions": [fn]})
    after = env(world, fn)
    assert after == {**before, "DUAL_WRITE_ENABLED": "false"}
