"""The least-privilege IAM policy a runbook needs (`runbook iam-policy`).

Every AWS operation the registered actions and checks call is granted here, scoped to the
runbook's tables, functions, log groups, dashboard, alarms and archive parameters where IAM
has resource-level permissions, and to "*" only where it has none (List*, GetMetricData,
DescribeLogGroups, GetCallerIdentity). A test lints it with parliament: zero findings.
`resources_for_call` names the ARNs one call touches, and `allows` evaluates a policy for it:
the test that records every call of a full rehearsal on moto uses both, so a new call without
a grant fails it.

Calls made only in the embedded rehearsal world (the traffic simulator, the world id, code
fetched from moto's S3) are listed in REHEARSAL_ONLY and are not granted.
"""

from __future__ import annotations

import fnmatch
import json
import re
from functools import cache
from typing import Any

import botocore.session

from engine.aws.copy_policy import copy_grants
from engine.aws.grant import Grant, table_arns
from engine.runbook.model import Runbook

ARCHIVE_PARAMETERS = "/runbook-console/archive/*"

# service, operation -> why it is not in the policy (never called against a real account)
REHEARSAL_ONLY: dict[tuple[str, str], str] = {
    ("cloudwatch", "PutMetricData"): "the embedded traffic simulator publishes metrics",
    ("ssm", "GetParameter:/runbook-console/simulator/"): "simulator knobs",
    ("ssm", "PutParameter:/runbook-console/simulator/"): "simulator knobs",
    ("ssm", "GetParameter:/runbook-console/world-id"): "the embedded world's identity",
    ("s3", "GetObject"): "moto's code location (on AWS the presigned URL needs no grant)",
}


_TABLE_READ = (
    "DescribeTable",
    "Scan",
    "Query",
    "GetItem",
    "BatchGetItem",
    "DescribeContinuousBackups",
    "DescribeTimeToLive",
    "ListTagsOfResource",
    "CreateBackup",
    "DescribeBackup",
    "UpdateContinuousBackups",
)
_TABLE_WRITE = ("PutItem", "BatchWriteItem", "DeleteItem", "UpdateItem")
_TABLE_DELETE_RESTORE = (
    "DeleteTable",
    "UpdateTable",
    "RestoreTableFromBackup",
    "TagResource",
    "UpdateTimeToLive",
)
_FLAG_FUNCTION = (
    "GetFunction",
    "GetFunctionConfiguration",
    "UpdateFunctionConfiguration",
    "PublishVersion",
    "GetAlias",
    "UpdateAlias",
)
_DEPRECATED_FUNCTION = (
    "GetFunction",
    "GetFunctionConfiguration",
    "GetPolicy",
    "DeleteFunction",
    "CreateFunction",
    "AddPermission",
    "PutFunctionConcurrency",
    "TagResource",
    # issue 19.2: what DeleteFunction takes with it, archived and restored
    "ListVersionsByFunction",
    "ListAliases",
    "GetAlias",
    "CreateAlias",
    "UpdateAlias",
    "PublishVersion",
    "UpdateFunctionConfiguration",
    "GetFunctionUrlConfig",
    "CreateFunctionUrlConfig",
    # each version's own code archived (GetFunction on fn:<version>) and published again; a
    # URL config found at a restore is made like the archived one
    "UpdateFunctionCode",
    "UpdateFunctionUrlConfig",
)
_LOG_GROUP = (
    "DeleteLogGroup",
    "CreateLogGroup",
    "PutRetentionPolicy",
    "DescribeMetricFilters",
    "DeleteMetricFilter",
    "PutMetricFilter",
)


def _function_arns(region: str, account: str, names: list[str]) -> list[str]:
    out = []
    for name in names:
        base = f"arn:aws:lambda:{region}:{account}:function:{name}"
        out += [base, f"{base}:*"]  # versions and aliases
    return out


def _log_group_arns(region: str, account: str, names: list[str]) -> list[str]:
    out = []
    for name in names:
        base = f"arn:aws:logs:{region}:{account}:log-group:{name}"
        out += [base, f"{base}:*"]
    return out


def _dedupe(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def grants(
    rb: Runbook, account: str = "*", region: str | None = None, api_id: str | None = None
) -> list[Grant]:
    """`api_id`: the REST API's id journaled on Day 1 (engine/actions/api_identity.py); the
    runbook's pinned id stands for it. Without either, every REST API of the region."""
    region = region or rb.runbook.region
    inv = rb.inventory
    all_tables = [t.name for t in inv.tables]
    deprecated_tables = inv.select_tables("@deprecated")
    written = [e.source for e in rb.entities] + [e.target for e in rb.entities]
    if rb.mapping is not None:
        written += [rb.mapping.companies_table, rb.mapping.company_users_table]
    flag_functions = list(rb.flags.functions)
    deprecated_functions = inv.select_functions("@deprecated")
    deprecated_groups = [inv.log_group_prefix + f for f in deprecated_functions]
    mon = rb.monitoring
    out = [
        Grant(
            "ListAndDescribeWithoutResourceLevelPermissions",
            (
                "dynamodb:ListTables",
                "dynamodb:ListBackups",
                "lambda:ListFunctions",
                "lambda:ListEventSourceMappings",
                "logs:DescribeLogGroups",
                "cloudwatch:GetMetricData",
                # migrate_entity's capacity budget: a table's auto scaling bounds
                "application-autoscaling:DescribeScalableTargets",
                "sts:GetCallerIdentity",
            ),
            ("*",),
        ),
        Grant(
            "ReadAndBackUpTheRunbooksTables",
            tuple(f"dynamodb:{a}" for a in _TABLE_READ),
            tuple(table_arns(region, account, all_tables)),
        ),
        Grant(
            "WriteTheMigratedTablesAndRollbacks",
            tuple(f"dynamodb:{a}" for a in _TABLE_WRITE),
            tuple(table_arns(region, account, _dedupe(written + deprecated_tables))),
        ),
        Grant(
            "DeleteAndRestoreTheDeprecatedTables",
            tuple(f"dynamodb:{a}" for a in _TABLE_DELETE_RESTORE),
            tuple(table_arns(region, account, deprecated_tables)),
        ),
        Grant(
            "SetFlagsOnTheFlaggedFunctions",
            tuple(f"lambda:{a}" for a in _FLAG_FUNCTION),
            tuple(_function_arns(region, account, flag_functions)),
        ),
        Grant(
            "ArchiveDeleteAndRestoreTheDeprecatedFunctions",
            tuple(f"lambda:{a}" for a in _DEPRECATED_FUNCTION),
            tuple(_function_arns(region, account, deprecated_functions)),
        ),
        # iam:PassRole: only on the roles Day 1 found, engine/aws/restore_policy.py
        # a mapping has no ARN before it exists: IAM scopes CreateEventSourceMapping by the
        # function it invokes (lambda:FunctionArn), as it does DeleteEventSourceMapping
        Grant(
            "CreateMappingsOfTheDeprecatedFunctions",
            ("lambda:CreateEventSourceMapping",),
            ("*",),
            {
                "ArnLike": {
                    "lambda:FunctionArn": _function_arns(region, account, deprecated_functions)
                }
            },
        ),
        Grant(  # a restore updates a mapping it finds to the archived settings
            "DeleteAndUpdateMappingsOfTheDeprecatedFunctions",
            ("lambda:DeleteEventSourceMapping", "lambda:UpdateEventSourceMapping"),
            (f"arn:aws:lambda:{region}:{account}:event-source-mapping:*",),
            {
                "ArnLike": {
                    "lambda:FunctionArn": _function_arns(region, account, deprecated_functions)
                }
            },
        ),
        Grant(
            "ReadMappingsItDeletesOrRepoints",
            ("lambda:GetEventSourceMapping",),
            (f"arn:aws:lambda:{region}:{account}:event-source-mapping:*",),
        ),
        Grant(
            "DeprecatedFunctionsLogGroups",
            tuple(f"logs:{a}" for a in _LOG_GROUP),
            tuple(_log_group_arns(region, account, deprecated_groups)),
        ),
        Grant(
            "MigrationDashboard",
            ("cloudwatch:PutDashboard", "cloudwatch:GetDashboard"),
            (f"arn:aws:cloudwatch::{account}:dashboard/{mon.dashboard}",),
        ),
        Grant(
            "MigrationAlarmsAndOldAlarmsOfDeprecatedFunctions",
            ("cloudwatch:DescribeAlarms", "cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"),
            (f"arn:aws:cloudwatch:{region}:{account}:alarm:*",),
        ),
        Grant(
            "ArchiveOfDeletedFunctionsEnvironments",
            ("ssm:PutParameter", "ssm:GetParameter"),
            (f"arn:aws:ssm:{region}:{account}:parameter{ARCHIVE_PARAMETERS}",),
        ),
    ]
    out += _notify_grants(rb, account, region)
    out += copy_grants(rb, account, region)
    if inv.api is not None:
        api = f"arn:aws:apigateway:{region}::/restapis"
        known = api_id or inv.api.id
        if known:  # resolved: that one API (a staging copy of the same name is never touched)
            # the list of APIs stays readable: the report counts them
            out.append(Grant("ListRestApis", ("apigateway:GET",), (api,)))
            api = f"{api}/{known}"
        out.append(
            Grant(
                "TheRunbooksRestApi",
                (
                    "apigateway:GET",
                    "apigateway:PUT",
                    "apigateway:POST",
                    "apigateway:PATCH",
                    "apigateway:DELETE",
                ),
                (api, f"{api}/*"),
            )
        )
    return out


def _notify_grants(rb: Runbook, account: str, region: str) -> list[Grant]:
    """`[notify]`: Publish to its topic only; the webhook's URL from its SSM parameter."""
    spec = rb.notify
    if spec is None:
        return []
    out = []
    if spec.sns_topic_arn:
        out.append(Grant("PublishTheRunsNotifications", ("sns:Publish",), (spec.sns_topic_arn,)))
    if spec.webhook_ssm_parameter:
        out.append(
            Grant(
                "ReadTheNotificationWebhook",
                ("ssm:GetParameter",),
                (f"arn:aws:ssm:{region}:{account}:parameter{spec.webhook_ssm_parameter}",),
            )
        )
    return out


def build_policy(
    rb: Runbook,
    account: str = "*",
    region: str | None = None,
    extra: list[Grant] | None = None,
    api_id: str | None = None,
) -> dict[str, Any]:
    """The policy; `extra`: more grants (an S3 journal's, engine/aws/state_policy.py);
    `api_id`: the journaled REST API (grants())."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            g.statement() for g in [*grants(rb, account, region, api_id), *(extra or [])]
        ],
    }


def render(
    rb: Runbook,
    account: str = "*",
    region: str | None = None,
    extra: list[Grant] | None = None,
    api_id: str | None = None,
) -> str:
    return json.dumps(build_policy(rb, account, region, extra, api_id), indent=2)


# --- what one call touches --------------------------------------------------------------------


@cache
def _model(service: str) -> Any:
    return botocore.session.get_session().get_service_model(service)


# IAM has no action for a transaction: each of its parts needs its own operation's permission
# (AWS: "Using IAM with DynamoDB transactions"); the engine's transactions hold Puts only
_ENCLOSED = {
    ("dynamodb", "TransactWriteItems"): "dynamodb:PutItem",
    ("s3", "ListObjectsV2"): "s3:ListBucket",  # IAM authorises a listing as ListBucket
}


def iam_action(service: str, operation: str) -> str:
    """The IAM action an API call needs (API Gateway authorises by HTTP verb)."""
    if (service, operation) in _ENCLOSED:
        return _ENCLOSED[service, operation]
    if service == "apigateway":
        return f"apigateway:{_model(service).operation_model(operation).http['method']}"
    prefix = {"monitoring": "cloudwatch", "stepfunctions": "states"}.get(service, service)
    return f"{prefix}:{operation}"


def _apigateway_path(operation: str, params: dict[str, Any]) -> str:
    op = _model("apigateway").operation_model(operation)
    uri = op.http["requestUri"].split("?")[0]
    members = op.input_shape.members if op.input_shape else {}
    by_location = {
        m.serialization.get("name", name): params.get(name) for name, m in members.items()
    }
    return re.sub(r"\{([^}+]+)\+?\}", lambda m: str(by_location.get(m[1]) or "*"), uri)


def _function_arn(region: str, account: str, name: str, qualifier: str | None) -> str:
    if name.startswith("arn:"):
        return name
    if ":" in name:
        name, qualifier = name.split(":", 1)
    arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def resources_for_call(
    service: str, operation: str, params: dict[str, Any], region: str, account: str
) -> list[str]:
    """The resource ARNs IAM evaluates for one call ("*" when it has no resource level)."""
    if service == "dynamodb":
        table = f"arn:aws:dynamodb:{region}:{account}:table/"
        out = []
        if "TableName" in params:
            out.append(table + params["TableName"])
            if params.get("IndexName"):
                out[-1] += f"/index/{params['IndexName']}"
        if "TargetTableName" in params:
            out.append(table + params["TargetTableName"])
        for key in ("BackupArn", "ResourceArn", "TableArn", "ExportArn"):
            if key in params:
                out.append(params[key])
        out += [table + t for t in params.get("RequestItems", {})]
        for entry in params.get("TransactItems", []):
            out += [table + op["TableName"] for op in entry.values() if "TableName" in op]
        return out or ["*"]
    if service == "lambda":
        if operation == "CreateEventSourceMapping":
            return ["*"]  # no ARN yet: IAM checks lambda:FunctionArn (a condition)
        if "UUID" in params:
            return [f"arn:aws:lambda:{region}:{account}:event-source-mapping:{params['UUID']}"]
        if "FunctionName" not in params:
            return ["*"]
        return [_function_arn(region, account, params["FunctionName"], params.get("Qualifier"))]
    if service == "logs":
        if "logGroupName" in params:
            return [f"arn:aws:logs:{region}:{account}:log-group:{params['logGroupName']}"]
        return ["*"]
    if service in ("cloudwatch", "monitoring"):
        if "DashboardName" in params:
            return [f"arn:aws:cloudwatch::{account}:dashboard/{params['DashboardName']}"]
        names = params.get("AlarmNames") or ([params["AlarmName"]] if "AlarmName" in params else [])
        if operation == "DescribeAlarms" and not names:
            names = [f"{params.get('AlarmNamePrefix', '')}*"]  # the alarms it may list
        if names:
            return [f"arn:aws:cloudwatch:{region}:{account}:alarm:{n}" for n in names]
        return ["*"]
    if service == "sns" and "TopicArn" in params:
        return [params["TopicArn"]]
    if service == "ssm" and "Name" in params:
        return [f"arn:aws:ssm:{region}:{account}:parameter{params['Name']}"]
    if service == "apigateway":
        return [f"arn:aws:apigateway:{region}::{_apigateway_path(operation, params)}"]
    if service == "s3" and "Bucket" in params:
        if operation in ("ListObjectsV2", "ListObjects"):
            return [f"arn:aws:s3:::{params['Bucket']}"]
        return [f"arn:aws:s3:::{params['Bucket']}/{params.get('Key', '')}"]
    if service == "iam" and "RoleName" in params:
        return [f"arn:aws:iam::{account}:role/{params['RoleName']}"]
    if service in ("stepfunctions", "states", "sfn"):
        for key in ("mapRunArn", "executionArn", "stateMachineArn"):
            if key in params:
                return [params[key]]
        if operation == "CreateStateMachine":
            return [f"arn:aws:states:{region}:{account}:stateMachine:{params['name']}"]
    return ["*"]


def allows(policy: dict[str, Any], action: str, resource: str) -> bool:
    """Whether an Allow statement matches (IAM wildcards; conditions taken as met)."""
    for st in policy["Statement"]:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        if any(fnmatch.fnmatchcase(action, a) for a in actions) and any(
            fnmatch.fnmatchcase(resource, r) for r in resources
        ):
            return True
    return False


def rehearsal_only(service: str, operation: str, params: dict[str, Any]) -> str | None:
    """Why a call is not in the policy (made only in the embedded world), or None."""
    if (service, operation) in REHEARSAL_ONLY:
        return REHEARSAL_ONLY[(service, operation)]
    name = str(params.get("Name", ""))
    for (svc, key), why in REHEARSAL_ONLY.items():
        op, _, prefix = key.partition(":")
        if svc == service and op == operation and prefix and name.startswith(prefix):
            return why
    return None
