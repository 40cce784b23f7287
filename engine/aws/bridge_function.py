"""The bridge: a small Lambda function that converts one data file of a DynamoDB export into
the Distributed Map reader's input (engine/aws/export_reader.py, zipped alone), created and
kept up to date by the engine. AWS contract (botocore's lambda model and waiters):

* CreateFunction right after CreateRole answers InvalidParameterValueException ("The role
  defined for the function cannot be assumed by Lambda") while IAM propagates: retried.
* A created function is `Pending` until `Active` (State); after an update LastUpdateStatus is
  `InProgress` until `Successful`, and another update meanwhile answers
  ResourceConflictException. `Failed` is final. Polled with GetFunctionConfiguration at the
  `FunctionActiveV2` / `FunctionUpdatedV2` waiters' delay and attempts.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
from botocore.exceptions import ClientError

from engine.aws import dynamo
from engine.aws.stepfunctions import (
    ROLE_PROPAGATION_ATTEMPTS,
    ROLE_PROPAGATION_SECONDS,
    ensure_role,
    service_trust,
)
from engine.core.clock import Clock

HANDLER = "export_reader.handler"
RUNTIME = "python3.12"  # boto3 is in the runtime: the zip needs nothing but export_reader.py
TIMEOUT_SECONDS = 900  # Lambda's maximum: one data file streamed end to end in one call
# the conversion is CPU-bound (bench/bridge.py) and holds ~8 MiB: Lambda gives one whole vCPU
# at 1,769 MB, and a CPU-bound call costs the same GB-seconds at any size, so buy the vCPU
MEMORY_MB = 1769
POLICY_NAME = "export-reader"
DESCRIPTION = "runbook-console: a DynamoDB export's data file -> the Distributed Map's input"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the zip format's epoch: the same bytes on every build
ZIP_MODE = 0o100644  # a regular file, readable by the runtime's user
SOURCE = Path(__file__).with_name("export_reader.py")
LAMBDA_TRUST = service_trust("lambda.amazonaws.com")


class BridgeFailed(RuntimeError):
    """The function ended Failed, or did not settle within the waiter's attempts."""


def bridge_zip() -> bytes:
    """export_reader.py alone, zipped deterministically (fixed date and mode), so that
    Lambda's CodeSha256 changes only when the code does."""
    info = zipfile.ZipInfo("export_reader.py", date_time=ZIP_DATE)
    info.external_attr = ZIP_MODE << 16
    info.create_system = 3  # unix: the mode above is read as such
    info.compress_type = zipfile.ZIP_DEFLATED
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr(info, SOURCE.read_bytes())
    return out.getvalue()


def code_sha256(code: bytes) -> str:
    """Lambda's CodeSha256: base64 of the zip's sha256."""
    return base64.b64encode(hashlib.sha256(code).digest()).decode("ascii")


def bridge_policy(
    partition: str,
    region: str,
    account: str,
    bucket: str,
    export_prefix: str,
    reader_prefix: str,
    function_name: str,
) -> dict[str, Any]:
    """The function role's inline policy: read the export, write the reader's input (multipart
    included: Create/UploadPart/Complete are s3:PutObject), its own log group only."""
    s3 = f"arn:{partition}:s3:::{bucket}/"
    logs = f"arn:{partition}:logs:{region}:{account}:log-group:/aws/lambda/{function_name}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadExport",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [f"{s3}{export_prefix.strip('/')}/*"],
            },
            {
                "Sid": "WriteReaderInput",
                "Effect": "Allow",
                "Action": [
                    "s3:PutObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                "Resource": [f"{s3}{reader_prefix}*"],
            },
            {
                "Sid": "OwnLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [logs, f"{logs}:*"],
            },
        ],
    }


@cache
def lambda_waiter(name: str) -> tuple[float, int]:
    """(delay seconds, attempts) of one of botocore's lambda waiters."""
    config = botocore.session.get_session().get_waiter_model("lambda").get_waiter(name)
    return float(config.delay), int(config.max_attempts)


def _configuration(lam: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(lam.get_function_configuration(FunctionName=name))
    except ClientError as exc:
        if dynamo.error_code(exc) != "ResourceNotFoundException":
            raise
        return None


def wait_settled(lam: Any, name: str, clock: Clock, waiter: str) -> dict[str, Any]:
    """GetFunctionConfiguration until neither Pending nor InProgress (the configuration); a
    Failed state or update raises BridgeFailed with AWS's reason. Wall time: a stop
    interrupts it."""
    delay, attempts = lambda_waiter(waiter)
    for attempt in range(attempts):
        conf = dict(lam.get_function_configuration(FunctionName=name))
        state, update = conf.get("State"), conf.get("LastUpdateStatus")
        if state == "Failed":
            raise BridgeFailed(f"function {name} Failed: {conf.get('StateReason')}")
        if update == "Failed":
            raise BridgeFailed(
                f"function {name}: update Failed: {conf.get('LastUpdateStatusReason')}"
            )
        if state != "Pending" and update != "InProgress":
            return conf
        if attempt + 1 < attempts:
            clock.sleep_real(delay)
    raise BridgeFailed(f"function {name} is not settled after {attempts} looks ({waiter})")


def _role_propagating(exc: ClientError) -> bool:
    message = str(exc.response.get("Error", {}).get("Message", ""))
    return dynamo.error_code(exc) == "InvalidParameterValueException" and "role" in message


def _call(lam: Any, name: str, clock: Clock, call: Callable[[], Any], update: bool) -> Any:
    """One create or update: retried while IAM propagates the role; an update also after the
    update in progress (ResourceConflictException) settles. To a create, that error means
    the function exists: raised."""
    for attempt in range(ROLE_PROPAGATION_ATTEMPTS):
        try:
            return call()
        except ClientError as exc:
            last = attempt + 1 == ROLE_PROPAGATION_ATTEMPTS
            if _role_propagating(exc) and not last:
                clock.sleep_real(ROLE_PROPAGATION_SECONDS)
            elif update and dynamo.error_code(exc) == "ResourceConflictException" and not last:
                wait_settled(lam, name, clock, "FunctionUpdatedV2")
            else:
                raise
    raise AssertionError("unreachable")


def ensure_bridge_function(
    lam: Any, iam: Any, function_name: str, role_name: str, policy: dict[str, Any], clock: Clock
) -> str:
    """The role (trust: lambda.amazonaws.com) and its policy, then the function created, or
    updated where its code or configuration differ; returns the function's ARN once Active."""
    role_arn = ensure_role(
        iam, role_name, POLICY_NAME, policy, trust=LAMBDA_TRUST, description=DESCRIPTION
    )
    code = bridge_zip()
    wanted: dict[str, Any] = {
        "Role": role_arn,
        "Handler": HANDLER,
        "Runtime": RUNTIME,
        "Timeout": TIMEOUT_SECONDS,
        "MemorySize": MEMORY_MB,
    }
    if _configuration(lam, function_name) is None:
        try:
            _call(
                lam,
                function_name,
                clock,
                lambda: lam.create_function(
                    FunctionName=function_name,
                    Code={"ZipFile": code},
                    Description=DESCRIPTION,
                    PackageType="Zip",
                    **wanted,
                ),
                update=False,
            )
            return str(wait_settled(lam, function_name, clock, "FunctionActiveV2")["FunctionArn"])
        except ClientError as exc:  # created meanwhile by another run: update it below
            if dynamo.error_code(exc) != "ResourceConflictException":
                raise
    current = wait_settled(lam, function_name, clock, "FunctionUpdatedV2")
    if current.get("CodeSha256") != code_sha256(code):
        _call(
            lam,
            function_name,
            clock,
            lambda: lam.update_function_code(FunctionName=function_name, ZipFile=code),
            update=True,
        )
        current = wait_settled(lam, function_name, clock, "FunctionUpdatedV2")
    if any(current.get(k) != v for k, v in wanted.items()):
        _call(
            lam,
            function_name,
            clock,
            lambda: lam.update_function_configuration(FunctionName=function_name, **wanted),
            update=True,
        )
        current = wait_settled(lam, function_name, clock, "FunctionUpdatedV2")
    return str(current["FunctionArn"])
