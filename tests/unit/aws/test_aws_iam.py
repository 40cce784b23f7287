"""Issue 8, item 7: `runbook iam-policy` prints a least-privilege policy for the runbook.

The coverage of every call a full rehearsal makes is in test_aws_rehearsal.py; here the
scoping: what the policy allows and, as much, what it refuses."""

from __future__ import annotations

import json
import warnings

import pytest

from engine.aws import iam_policy
from engine.aws.restore_policy import RestoreNeeds, restore_grants, restore_needs
from engine.cli.app import main
from engine.state.journal import JournalStore
from tests.support.world import new_journal

with warnings.catch_warnings():  # parliament imports pkg_resources, deprecated
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", UserWarning)
    from parliament import analyze_policy_string

ACCOUNT = "111122223333"


def table(name: str) -> str:
    return f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{name}"


def function(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"


def test_cli_prints_the_policy_as_json(capsys, runbook):
    assert main(["iam-policy", "--account", ACCOUNT]) == 0
    policy = json.loads(capsys.readouterr().out)
    assert policy == iam_policy.build_policy(runbook, ACCOUNT)
    assert policy["Version"] == "2012-10-17"
    wildcard = [s for s in policy["Statement"] if s["Resource"] == "*" and "Condition" not in s]
    assert len(wildcard) == 1  # only the calls IAM cannot scope
    assert all(":List" in a or ":Describe" in a or ":Get" in a for a in wildcard[0]["Action"])


def test_policy_scopes_destruction_to_what_the_plan_deprecates(runbook):
    policy = iam_policy.build_policy(runbook, ACCOUNT)
    legacy = "construction-expenses-multi-table-expenses"
    company = "construction-expenses-company-expenses"
    assert iam_policy.allows(policy, "dynamodb:DeleteTable", table(legacy))
    assert not iam_policy.allows(policy, "dynamodb:DeleteTable", table(company))
    assert not iam_policy.allows(policy, "dynamodb:DeleteTable", table("someone-elses-table"))
    assert iam_policy.allows(policy, "dynamodb:PutItem", table(company))
    assert not iam_policy.allows(
        policy, "dynamodb:PutItem", table("construction-expenses-invitations")
    )
    assert iam_policy.allows(policy, "dynamodb:Query", table(company) + "/index/invoiceNum-index")
    assert iam_policy.allows(policy, "dynamodb:Scan", table("construction-expenses-invitations"))

    old_fn = "construction-expenses-multi-table-add-expense"
    assert iam_policy.allows(policy, "lambda:DeleteFunction", function(old_fn))
    assert not iam_policy.allows(policy, "lambda:DeleteFunction", function(company))
    assert iam_policy.allows(policy, "lambda:UpdateAlias", function(company) + ":live")
    assert iam_policy.allows(policy, "lambda:UpdateFunctionConfiguration", function(company))
    assert not iam_policy.allows(
        policy, "lambda:UpdateFunctionConfiguration", function("construction-expenses-auth-login")
    )
    group = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/{old_fn}"
    assert iam_policy.allows(policy, "logs:DeleteLogGroup", group)
    assert not iam_policy.allows(policy, "logs:DeleteLogGroup", group.replace(old_fn, company))
    param = f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/runbook-console/archive/functions/x/env"
    assert iam_policy.allows(policy, "ssm:PutParameter", param)
    assert not iam_policy.allows(
        policy, "ssm:PutParameter", param.replace("runbook-console", "app")
    )
    assert not iam_policy.allows(policy, "iam:CreateRole", "*")


def test_each_call_is_mapped_to_its_action_and_resource():
    assert iam_policy.iam_action("apigateway", "DeleteMethod") == "apigateway:DELETE"
    assert iam_policy.iam_action("apigateway", "UpdateStage") == "apigateway:PATCH"
    assert iam_policy.iam_action("dynamodb", "Scan") == "dynamodb:Scan"
    # a transaction of Puts is authorised as PutItem on each table it writes
    assert iam_policy.iam_action("dynamodb", "TransactWriteItems") == "dynamodb:PutItem"
    arns = iam_policy.resources_for_call(
        "apigateway",
        "DeleteMethod",
        {"restApiId": "a1", "resourceId": "r9", "httpMethod": "GET"},
        "us-east-1",
        ACCOUNT,
    )
    assert arns == ["arn:aws:apigateway:us-east-1::/restapis/a1/resources/r9/methods/GET"]
    arns = iam_policy.resources_for_call(
        "dynamodb", "BatchWriteItem", {"RequestItems": {"t1": [], "t2": []}}, "us-east-1", ACCOUNT
    )
    assert arns == [table("t1"), table("t2")]
    arns = iam_policy.resources_for_call(
        "lambda",
        "GetFunctionConfiguration",
        {"FunctionName": "f", "Qualifier": "live"},
        "us-east-1",
        ACCOUNT,
    )
    assert arns == [function("f") + ":live"]
    why = iam_policy.rehearsal_only(
        "ssm", "GetParameter", {"Name": "/runbook-console/simulator/error-rate"}
    )
    assert why and iam_policy.rehearsal_only("ssm", "GetParameter", {"Name": "/app/x"}) is None


def test_the_capacity_budget_reads_auto_scaling_and_throttle_metrics(runbook):
    """Issue 21: DescribeScalableTargets and GetMetricData have no resource-level permissions;
    DescribeTable is scoped to the runbook's tables."""
    policy = iam_policy.build_policy(runbook, ACCOUNT)
    assert iam_policy.allows(policy, "application-autoscaling:DescribeScalableTargets", "*")
    assert iam_policy.allows(policy, "cloudwatch:GetMetricData", "*")
    target = "construction-expenses-company-expenses"
    assert iam_policy.allows(policy, "dynamodb:DescribeTable", table(target))
    assert iam_policy.iam_action("application-autoscaling", "DescribeScalableTargets") == (
        "application-autoscaling:DescribeScalableTargets"
    )


@pytest.mark.parametrize("api_id", [None, "a1prod"])
def test_parliament_finds_nothing_in_the_policy(runbook, api_id):
    """Issue 19, item 8: a policy a reviewer can sign, by parliament's count (an IAM policy
    linter: resource stars on scopable actions, unknown actions, malformed conditions), before
    Day 1 and with the API's id journaled."""
    policy = iam_policy.render(runbook, ACCOUNT, api_id=api_id)
    findings = analyze_policy_string(policy).findings
    assert [(f.issue, f.detail) for f in findings] == []


def test_no_grant_the_engine_never_calls(runbook):
    policy = iam_policy.build_policy(runbook, ACCOUNT)
    granted = {a for statement in policy["Statement"] for a in statement["Action"]}
    for unused in ("cloudwatch:GetMetricStatistics", "dynamodb:ConditionCheckItem"):
        assert unused not in granted
    alarm = f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:*"
    resources = iam_policy.resources_for_call(
        "cloudwatch", "DescribeAlarms", {"AlarmNamePrefix": "x-"}, "us-east-1", ACCOUNT
    )
    assert resources == [f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:x-*"]
    assert iam_policy.allows(policy, "cloudwatch:DescribeAlarms", resources[0])
    assert iam_policy.allows(policy, "cloudwatch:DescribeAlarms", alarm)


NEEDS = RestoreNeeds(
    roles=(f"arn:aws:iam::{ACCOUNT}:role/legacy-lambda",),
    kms_keys=(f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",),
    layers=(f"arn:aws:lambda:us-east-1:{ACCOUNT}:layer:deps:3",),
    vpc=True,
    stream_readers=(function("construction-expenses-company-expenses") + ":7",),
)


def test_pass_role_only_on_the_archived_roles_towards_lambda(runbook):
    """Issue 19, item 8: never `role/*` beside CreateFunction and AddPermission (a privilege
    escalation path); the roles Day 1 found, with iam:PassedToService."""
    base = iam_policy.build_policy(runbook, ACCOUNT)
    assert not any("iam:PassRole" in s["Action"] for s in base["Statement"])
    policy = iam_policy.build_policy(
        runbook, ACCOUNT, extra=restore_grants(NEEDS, ACCOUNT, "us-east-1")
    )
    [passing] = [s for s in policy["Statement"] if "iam:PassRole" in s["Action"]]
    assert passing["Resource"] == [NEEDS.roles[0]]
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}
    assert not iam_policy.allows(policy, "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/admin")
    assert iam_policy.allows(policy, "lambda:GetLayerVersion", NEEDS.layers[0])
    assert iam_policy.allows(policy, "kms:Decrypt", NEEDS.kms_keys[0])
    assert not iam_policy.allows(policy, "kms:Decrypt", NEEDS.kms_keys[0][:-1] + "c")
    assert iam_policy.allows(policy, "ec2:DescribeSubnets", "*")
    # mappings: created and deleted only for the deprecated functions and the stream readers
    [create] = [s for s in policy["Statement"] if s["Sid"] == "RepointTheMappingsOfLegacyStreams"]
    assert create["Condition"]["ArnLike"]["lambda:FunctionArn"] == [
        function("construction-expenses-company-expenses"),
        function("construction-expenses-company-expenses") + ":*",
    ]
    # ... and updated: a restore makes one it finds like the archived one, under the same scope
    [update] = [
        s for s in policy["Statement"] if s["Sid"] == "DeleteAndUpdateTheMappingsOfLegacyStreams"
    ]
    assert "lambda:UpdateEventSourceMapping" in update["Action"]
    assert update["Condition"] == create["Condition"]
    findings = analyze_policy_string(json.dumps(policy)).findings
    assert [(f.issue, f.detail) for f in findings] == []


def test_restore_needs_come_from_the_day1_inventory():
    inventory = {
        "deprecated_functions": {
            "a": {"role": NEEDS.roles[0], "kms_key": "", "layers": [], "vpc": False},
            "b": {"role": NEEDS.roles[0], "kms_key": NEEDS.kms_keys[0],
                  "layers": list(NEEDS.layers), "vpc": True},
        },
        "legacy_stream_mappings": [{"function": NEEDS.stream_readers[0]}],
    }  # fmt: skip
    assert restore_needs(inventory) == NEEDS
    assert restore_grants(RestoreNeeds()) == []


def test_cli_reads_the_roles_from_the_runs_day1_inventory(capsys, runbook, tmp_path):
    journal = tmp_path / "run.toml"
    artifacts = tmp_path / "run.artifacts"
    artifacts.mkdir()
    assert main(["iam-policy", "--account", ACCOUNT, "--journal", str(journal)]) == 0
    out = capsys.readouterr()
    assert "iam:PassRole" not in out.out and "no Day 1 inventory" in out.err
    (artifacts / "inventory-inventory.json").write_text(
        json.dumps({"deprecated_functions": {"f": {"role": NEEDS.roles[0], "layers": []}}})
    )
    assert main(["iam-policy", "--account", ACCOUNT, "--journal", str(journal)]) == 0
    policy = json.loads(capsys.readouterr().out)
    [passing] = [s for s in policy["Statement"] if "iam:PassRole" in s["Action"]]
    assert passing["Resource"] == [NEEDS.roles[0]]


def test_api_gateway_grants_name_the_api_day_1_journaled(capsys, runbook, tmp_path):
    """Issue 19, item 8: before Day 1 the API is unknown (every REST API, and said); once the
    journal holds its id, only that API: a staging copy of the same name is out of reach."""
    journal_path = tmp_path / "run.toml"
    assert main(["iam-policy", "--account", ACCOUNT, "--journal", str(journal_path)]) == 0
    before = capsys.readouterr()
    assert "the REST API is not resolved yet" in before.err
    route = "arn:aws:apigateway:us-east-1::/restapis/{}/resources/r1/methods/GET"
    assert iam_policy.allows(json.loads(before.out), "apigateway:DELETE", route.format("b2"))

    journal = new_journal(runbook)
    journal.api_id = "a1prod"
    JournalStore(journal_path).save(journal)
    assert main(["iam-policy", "--account", ACCOUNT, "--journal", str(journal_path)]) == 0
    after = capsys.readouterr()
    assert "not resolved" not in after.err
    policy = json.loads(after.out)
    assert iam_policy.allows(policy, "apigateway:DELETE", route.format("a1prod"))
    assert iam_policy.allows(
        policy, "apigateway:POST", "arn:aws:apigateway:us-east-1::/restapis/a1prod/deployments"
    )
    assert not iam_policy.allows(policy, "apigateway:DELETE", route.format("b2staging"))
    assert not iam_policy.allows(
        policy, "apigateway:GET", "arn:aws:apigateway:us-east-1::/restapis/b2staging/stages"
    )
    # the list of APIs stays readable (the report counts them), and only readable
    assert iam_policy.allows(policy, "apigateway:GET", "arn:aws:apigateway:us-east-1::/restapis")
    assert not iam_policy.allows(
        policy, "apigateway:POST", "arn:aws:apigateway:us-east-1::/restapis"
    )
    # a runbook that pins the id needs no journal
    pinned = runbook.model_copy(
        update={
            "inventory": runbook.inventory.model_copy(
                update={"api": runbook.inventory.api.model_copy(update={"id": "a1prod"})}
            )
        }
    )
    policy = iam_policy.build_policy(pinned, ACCOUNT)
    assert iam_policy.allows(policy, "apigateway:PATCH", route.format("a1prod"))
    assert not iam_policy.allows(policy, "apigateway:PATCH", route.format("b2staging"))
