"""The legacy function and stream of a real-shaped rehearsal world (WorldShape.legacy_function,
on by default): what a Phase 5 rollback must bring back whole.

The function: the first deprecated function that uses the first legacy entity table. It runs on
a runtime AWS now blocks creates on (made before the block: the seed stands in for history),
in a VPC, with a layer; two published versions behind an alias (weighted 90/10), a function URL
on the alias, and the API's legacy route invoking it through the alias, with the permission to.
The table: its stream, consumed by the function's alias through an event source mapping."""

from __future__ import annotations

from typing import Any

from engine.rehearsal.seed_lambda import handler_zip
from engine.runbook.model import Runbook

LAYER_NAME = "construction-expenses-shared-deps"
VPC_CIDR = "10.40.0.0/16"


def legacy_function_of(runbook: Runbook) -> tuple[str, str] | None:
    """(function, table) the legacy shapes go on, or None when the runbook has neither."""
    if not runbook.entities:
        return None
    table = runbook.entities[0].source
    fn = next(
        (f.name for f in runbook.inventory.functions if f.deprecate and f.table == table), None
    )
    return (fn, table) if fn else None


def legacy_settings(session: Any, runtime: str) -> dict[str, Any]:
    """CreateFunction settings of the legacy function: its runtime, a VPC and a layer (both
    made here: they outlive the function, as in an account)."""
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock=VPC_CIDR)["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(
        GroupName="legacy-functions", Description="legacy functions", VpcId=vpc
    )["GroupId"]
    layer = session.client("lambda").publish_layer_version(
        LayerName=LAYER_NAME, Content={"ZipFile": handler_zip()}, CompatibleRuntimes=[runtime]
    )["LayerVersionArn"]
    return {
        "Runtime": runtime,
        "VpcConfig": {"SubnetIds": [subnet], "SecurityGroupIds": [group]},
        "Layers": [layer],
        "LoggingConfig": {"LogFormat": "JSON", "ApplicationLogLevel": "INFO"},
    }


def seed_legacy_function(session: Any, fn: str, alias: str) -> None:
    """Two published versions (the second after a configuration change), the alias on the
    second with 10% on the first, and a function URL on the alias."""
    lam = session.client("lambda")
    lam.get_waiter("function_active_v2").wait(FunctionName=fn)
    first = lam.publish_version(FunctionName=fn, Description="release 1")["Version"]
    lam.update_function_configuration(FunctionName=fn, Timeout=10)
    lam.get_waiter("function_updated_v2").wait(FunctionName=fn)
    second = lam.publish_version(FunctionName=fn, Description="release 2")["Version"]
    lam.create_alias(
        FunctionName=fn,
        Name=alias,
        FunctionVersion=second,
        RoutingConfig={"AdditionalVersionWeights": {first: 0.1}},
    )
    lam.create_function_url_config(FunctionName=fn, Qualifier=alias, AuthType="AWS_IAM")


def allow_api(session: Any, fn: str, alias: str, api_id: str) -> None:
    """The permission the API needs to invoke the function through its alias."""
    region, account = session.region_name, _account(session)
    session.client("lambda").add_permission(
        FunctionName=fn,
        Qualifier=alias,
        StatementId=f"apigateway-{api_id}",
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:{region}:{account}:{api_id}/*",
    )


def seed_legacy_stream(session: Any, table: str, fn: str, alias: str) -> str | None:
    """The legacy table's stream, consumed by the function's alias; returns the stream ARN
    (None when the Lambda endpoint cannot see the table's: a split rehearsal target)."""
    ddb = session.client("dynamodb")
    ddb.update_table(
        TableName=table,
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    stream = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    lam = session.client("lambda")
    try:
        lam.create_event_source_mapping(
            EventSourceArn=stream,
            FunctionName=f"{fn}:{alias}",
            StartingPosition="LATEST",
            BatchSize=50,
            MaximumRetryAttempts=3,
        )
    except lam.exceptions.ResourceNotFoundException:
        # DynamoDB on one emulator, Lambda on another: this Lambda cannot see the stream
        # (in an account both are one), so the world has the stream without its reader
        return None
    return str(stream)


def _account(session: Any) -> str:
    return str(session.client("sts").get_caller_identity()["Account"])
