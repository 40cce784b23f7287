"""The IAM grants of the step-functions backend of migrate_entity (`runbook iam-policy`): what
the engine calls to export a source, run the copy's state machine and keep its bridge function,
all named from the runbook (engine/actions/migrate/sfn_spec.aws_name)."""

from __future__ import annotations

from engine.aws.grant import Grant, table_arns
from engine.runbook.model import Runbook


def _copy_steps(rb: Runbook) -> list[tuple[str, str, str, str]]:
    """(step id, entity, bucket, prefix) of every migrate_entity step on the step-functions
    backend."""
    out = []
    for step in rb.steps:
        if step.action != "migrate_entity" or step.params.get("backend") != "step-functions":
            continue
        p = step.params
        prefix = str(p.get("prefix", "runbook-console")).strip("/")
        out.append((step.id, str(p.get("entity")), str(p.get("bucket")), prefix))
    return out


def copy_grants(rb: Runbook, account: str, region: str) -> list[Grant]:
    """The step-functions backend of migrate_entity: export the source (PITR), its objects in
    the runbook's bucket, the execution role it creates and passes to Step Functions only, the
    state machine and its executions, the bridge function (a real account) and its role passed
    to Lambda only, all named from the runbook (sfn_spec.aws_name)."""
    steps = _copy_steps(rb)
    if not steps:
        return []
    rid = rb.runbook.id
    sources = [e.source for e in rb.entities if e.name in {s[1] for s in steps}]
    tables = table_arns(region, account, sources)
    buckets = sorted({b for _, _, b, _ in steps})
    objects = sorted({f"arn:aws:s3:::{b}/{p}/{rid}/*" for _, _, b, p in steps})
    roles = f"arn:aws:iam::{account}:role/runbook-copy-*"
    machines = f"arn:aws:states:{region}:{account}:stateMachine:runbook-{rid}*"
    executions = f"arn:aws:states:{region}:{account}:execution:runbook-{rid}*"
    map_runs = f"arn:aws:states:{region}:{account}:mapRun:runbook-{rid}*"
    bridge_roles = f"arn:aws:iam::{account}:role/runbook-bridge-*"
    return [
        Grant(
            "ExportTheSourcesOfStepFunctionsCopies",
            ("dynamodb:ExportTableToPointInTime", "dynamodb:DescribeTable"),
            tuple(tables),
        ),
        Grant(
            "DescribeTheirExports",
            ("dynamodb:DescribeExport",),
            tuple(f"{t}/export/*" for t in tables),
        ),
        Grant(
            "TheCopiesObjects",
            ("s3:GetObject", "s3:PutObject"),
            tuple(objects),
        ),
        Grant(
            "ListTheCopiesObjects", ("s3:ListBucket",), tuple(f"arn:aws:s3:::{b}" for b in buckets)
        ),
        Grant(
            "TheCopiesExecutionRole",
            ("iam:GetRole", "iam:CreateRole", "iam:PutRolePolicy"),
            (roles,),
        ),
        Grant(
            "PassTheExecutionRoleToStepFunctionsOnly",
            ("iam:PassRole",),
            (roles,),
            {"StringEquals": {"iam:PassedToService": "states.amazonaws.com"}},
        ),
        Grant(
            "TheCopiesStateMachines",
            (
                "states:CreateStateMachine",
                "states:UpdateStateMachine",
                "states:DescribeStateMachine",
                "states:StartExecution",
            ),
            (machines,),
        ),
        Grant(
            "TheCopiesExecutions",
            ("states:StopExecution", "states:RedriveExecution", "states:ListMapRuns"),
            (executions,),
        ),
        Grant(  # IAM names DescribeExecution's resource by both kinds of execution
            "DescribeTheCopiesExecutions",
            ("states:DescribeExecution",),
            (executions, f"arn:aws:states:{region}:{account}:express:runbook-{rid}*"),
        ),
        Grant("TheCopiesMapRuns", ("states:DescribeMapRun",), (map_runs,)),
        # a file's map run is nested in its child: the children are listed by map run (IAM
        # names both resource types for ListExecutions)
        Grant("TheCopiesFileChildren", ("states:ListExecutions",), (machines, map_runs)),
        Grant(
            "TheCopiesBridgeFunctions",
            (
                "lambda:GetFunction",
                "lambda:GetFunctionConfiguration",
                "lambda:CreateFunction",
                "lambda:UpdateFunctionCode",
                "lambda:UpdateFunctionConfiguration",
            ),
            (f"arn:aws:lambda:{region}:{account}:function:runbook-bridge-{rid}*",),
        ),
        Grant(
            "TheBridgeFunctionsRole",
            ("iam:GetRole", "iam:CreateRole", "iam:PutRolePolicy"),
            (bridge_roles,),
        ),
        Grant(
            "PassTheBridgeRoleToLambdaOnly",
            ("iam:PassRole",),
            (bridge_roles,),
            {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}},
        ),
    ]
