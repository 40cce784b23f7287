"""DynamoDB exports and Step Functions executions as the step-functions backend of
migrate_entity uses them. Waits and limits come from botocore's service models:

* ExportTableToPointInTime: polled with DescribeExport at the `ExportCompleted` waiter's delay
  (20 s) for at most its attempts (60); FAILED ends the wait (dynamodb waiters-2.json).
* Names: 1..80 characters (stepfunctions `Name`); engine/actions/migrate/sfn_spec.aws_name.
* StartExecution is idempotent for STANDARD workflows: the same name and input return the
  running execution; a closed one (or other input) answers ExecutionAlreadyExists, and the
  execution's ARN follows from the state machine's and the name.
* ListMapRuns is empty until the Distributed Map state starts: DescribeMapRun only after. It
  lists the runs the execution itself started: a nested map's runs belong to the outer map's
  child executions (ListExecutions by mapRunArn; NestedMapRuns).
* RedriveExecution restarts a FAILED, ABORTED or TIMED_OUT standard execution (14 days);
  an emulator without it (moto 5.2.6 answers HTTP 500) is reported as None.
* CreateStateMachine right after CreateRole can be refused while IAM propagates the role
  (AccessDeniedException "... is not authorized to assume the provided role"): retried.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import botocore.session
from botocore.exceptions import ClientError

from engine.aws import dynamo
from engine.core.clock import Clock

RUNNING = "RUNNING"
REDRIVABLE = ("FAILED", "ABORTED", "TIMED_OUT")
ROLE_PROPAGATION_ATTEMPTS = 30  # x 2 s: IAM is eventually consistent
ROLE_PROPAGATION_SECONDS = 2.0


def service_trust(service: str) -> dict[str, Any]:
    """A role's trust policy: `service` (its principal, e.g. states.amazonaws.com) may assume it."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ],
    }


STATES_TRUST = service_trust("states.amazonaws.com")


class ExportFailed(RuntimeError):
    """The export ended FAILED, or did not complete within the waiter's attempts."""


@cache
def export_waiter() -> tuple[float, int]:
    """(delay seconds, attempts) of botocore's ExportCompleted waiter."""
    model = botocore.session.get_session().get_waiter_model("dynamodb")
    config = model.get_waiter("ExportCompleted")
    return float(config.delay), int(config.max_attempts)


def wait_export(ddb: Any, export_arn: str, clock: Clock) -> dict[str, Any]:
    """DescribeExport until COMPLETED (the description) or FAILED (ExportFailed); the first
    look is at once, then one per waiter delay (wall time: a stop interrupts it)."""
    delay, attempts = export_waiter()
    for attempt in range(attempts):
        desc = ddb.describe_export(ExportArn=export_arn)["ExportDescription"]
        status = desc.get("ExportStatus")
        if status == "COMPLETED":
            return dict(desc)
        if status == "FAILED":
            raise ExportFailed(
                f"export {export_arn} FAILED: {desc.get('FailureCode')}: "
                f"{desc.get('FailureMessage')}"
            )
        if attempt + 1 < attempts:
            clock.sleep_real(delay)
    raise ExportFailed(f"export {export_arn} is not COMPLETED after {attempts} looks")


def execution_arn(state_machine_arn: str, name: str) -> str:
    """arn:...:stateMachine:<sm> -> arn:...:execution:<sm>:<name>."""
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name


def ensure_role(
    iam: Any,
    name: str,
    policy_name: str,
    policy: dict[str, Any],
    *,
    trust: dict[str, Any] = STATES_TRUST,
    description: str = "runbook-console: the step-functions backend of migrate_entity",
) -> str:
    """A role (the execution role by default), created once with `trust` and its inline
    policy (re)set; returns its ARN."""
    try:
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    except ClientError as exc:
        if dynamo.error_code(exc) != "NoSuchEntity":
            raise
        try:
            arn = iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(trust),
                Description=description,
            )["Role"]["Arn"]
        except ClientError as again:
            if dynamo.error_code(again) != "EntityAlreadyExists":
                raise
            arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(policy))
    return str(arn)


def ensure_state_machine(
    sfn: Any, arn: str, name: str, definition: str, role_arn: str, clock: Clock
) -> str:
    """Create the state machine, or update it to this definition and role; returns its ARN."""
    for attempt in range(ROLE_PROPAGATION_ATTEMPTS):
        try:
            try:
                current = sfn.describe_state_machine(stateMachineArn=arn)
            except ClientError as exc:
                if dynamo.error_code(exc) != "StateMachineDoesNotExist":
                    raise
                made = sfn.create_state_machine(
                    name=name, definition=definition, roleArn=role_arn, type="STANDARD"
                )
                return str(made["stateMachineArn"])
            if current.get("definition") != definition or current.get("roleArn") != role_arn:
                sfn.update_state_machine(
                    stateMachineArn=arn, definition=definition, roleArn=role_arn
                )
            return arn
        except ClientError as exc:
            propagating = dynamo.error_code(exc) == "AccessDeniedException"
            if not propagating or attempt + 1 == ROLE_PROPAGATION_ATTEMPTS:
                raise
            clock.sleep_real(ROLE_PROPAGATION_SECONDS)
    raise AssertionError("unreachable")


def start_once(sfn: Any, state_machine_arn: str, name: str, payload: str) -> str:
    """StartExecution by name: the running one of that name answers the same; a closed one
    (ExecutionAlreadyExists) is found by its ARN. Never a second execution of one name."""
    try:
        got = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=payload)
        return str(got["executionArn"])
    except ClientError as exc:
        if dynamo.error_code(exc) != "ExecutionAlreadyExists":
            raise
    arn = execution_arn(state_machine_arn, name)
    sfn.describe_execution(executionArn=arn)  # it exists, or this raises
    return arn


def redrive(sfn: Any, arn: str) -> bool:
    """RedriveExecution; False where the endpoint has no such operation (moto 5.2.6: 500)."""
    try:
        sfn.redrive_execution(executionArn=arn)
        return True
    except NotImplementedError:  # moto in process (mock_aws) raises what its server answers 500
        return False
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = dynamo.error_code(exc)
        if status >= 500 or code in ("UnknownOperationException", "NotImplemented"):
            return False
        raise


def _pages(call: Any, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every page of a nextToken-paginated Step Functions list."""
    out: list[dict[str, Any]] = []
    while True:
        page = call(**kwargs)
        out += page.get(key, [])
        token = page.get("nextToken")
        if not token:
            return out
        kwargs["nextToken"] = token


class NestedMapRuns:
    """The item counts of a map of maps: the outer map's run (one item per data file) and
    every inner run (one per file), summed.

    AWS lists a map run under the execution that started it: the outer run under the
    execution, each inner run under its child (ListExecutions by map run, then ListMapRuns of
    each child). moto lists them all under the execution and keeps no child executions. Both
    are read. A SUCCEEDED run's counts are final and a closed child's runs do not change:
    each is asked once (a FAILED one may be redriven, so it is asked again)."""

    def __init__(self, sfn: Any, outer_label: str) -> None:
        self.sfn = sfn
        self.marker = f"/{outer_label}:"  # an outer map run's ARN: ...:mapRun:<sm>/<label>:<id>
        self.final: dict[str, dict[str, int]] = {}  # SUCCEEDED inner run -> its item counts
        self.closed_children: dict[str, list[str]] = {}  # closed child -> its inner runs

    def poll(self, execution_arn: str) -> tuple[dict[str, Any] | None, dict[str, int]]:
        """(the outer map run described, or None before it starts; the inner runs' item
        counts, summed)."""
        runs = _pages(self.sfn.list_map_runs, "mapRuns", executionArn=execution_arn)
        outer = [r for r in runs if self.marker in r["mapRunArn"]]
        inner = [r["mapRunArn"] for r in runs if self.marker not in r["mapRunArn"]]
        described = None
        if outer:
            newest = max(outer, key=lambda r: r["startDate"])
            described = dict(self.sfn.describe_map_run(mapRunArn=newest["mapRunArn"]))
            inner += self._children_runs(newest["mapRunArn"])
        summed: dict[str, int] = {}
        for arn in dict.fromkeys(inner):
            for key, value in self._counts(arn).items():
                summed[key] = summed.get(key, 0) + int(value)
        return described, summed

    def _children_runs(self, outer_arn: str) -> list[str]:
        children = _pages(
            self.sfn.list_executions, "executions", mapRunArn=outer_arn, maxResults=1000
        )
        arns: list[str] = []
        for child in children:
            arn = child["executionArn"]
            if arn in self.closed_children:
                arns += self.closed_children[arn]
                continue
            mine = [
                r["mapRunArn"] for r in _pages(self.sfn.list_map_runs, "mapRuns", executionArn=arn)
            ]
            if child.get("status") == "SUCCEEDED":
                self.closed_children[arn] = mine
            arns += mine
        return arns

    def _counts(self, arn: str) -> dict[str, int]:
        if arn in self.final:
            return self.final[arn]
        run = self.sfn.describe_map_run(mapRunArn=arn)
        counts = {k: int(v) for k, v in run.get("itemCounts", {}).items()}
        if run.get("status") == "SUCCEEDED":
            self.final[arn] = counts
        return counts
