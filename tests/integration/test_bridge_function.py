"""The bridge function (engine/aws/bridge_function.py) on moto: its role and policy, the
function created once, then updated only where its code or configuration differ."""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from engine.aws import bridge_function as bf
from engine.core.clock import Clock

with warnings.catch_warnings():  # parliament imports pkg_resources, deprecated
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", UserWarning)
    from parliament import analyze_policy_string

FUNCTION = "runbook-bridge-test"
ROLE = "runbook-bridge-test-role"
POLICY = bf.bridge_policy(
    "aws",
    "us-east-1",
    "123456789012",
    "exports",
    "rb/run/step/export",
    "rb/run/step/reader/",
    FUNCTION,
)


class RecordingClock(Clock):
    """Real waits would be wasted on moto (Active at once): records them instead; `then`
    runs at the first one (what AWS finishes meanwhile)."""

    def __init__(self, then: Any = None) -> None:
        super().__init__()
        self.slept: list[float] = []
        self.then = then

    def sleep_real(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self.then is not None:
            self.then()
            self.then = None


@pytest.fixture
def clients() -> Iterator[tuple[Any, Any, list[str]]]:
    """Lambda and IAM on moto, and the Lambda operations called, in order."""
    with mock_aws():
        lam = boto3.client("lambda", region_name="us-east-1")
        iam = boto3.client("iam", region_name="us-east-1")
        calls: list[str] = []
        lam.meta.events.register(
            "before-call.lambda.*", lambda model, **_: calls.append(model.name)
        )
        yield lam, iam, calls


def writes(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith(("Create", "Update"))]


def test_creates_the_role_and_the_function(clients: tuple[Any, Any, list[str]]) -> None:
    lam, iam, calls = clients
    clock = RecordingClock()
    arn = bf.ensure_bridge_function(lam, iam, FUNCTION, ROLE, POLICY, clock)
    role = iam.get_role(RoleName=ROLE)["Role"]
    trust = role["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    got = iam.get_role_policy(RoleName=ROLE, PolicyName=bf.POLICY_NAME)["PolicyDocument"]
    assert got == POLICY
    conf = lam.get_function_configuration(FunctionName=FUNCTION)
    assert conf["FunctionArn"] == arn
    assert (conf["Runtime"], conf["Handler"], conf["Timeout"], conf["MemorySize"]) == (
        "python3.12",
        "export_reader.handler",
        900,
        1769,  # one vCPU: the conversion is CPU-bound
    )
    assert conf["Role"] == role["Arn"]
    assert conf["CodeSha256"] == bf.code_sha256(bf.bridge_zip())
    assert conf["State"] == "Active"
    assert writes(calls) == ["CreateFunction"] and clock.slept == []


def test_a_second_call_changes_nothing(clients: tuple[Any, Any, list[str]]) -> None:
    lam, iam, calls = clients
    bf.ensure_bridge_function(lam, iam, FUNCTION, ROLE, POLICY, RecordingClock())
    before = lam.get_function_configuration(FunctionName=FUNCTION)
    calls.clear()
    bf.ensure_bridge_function(lam, iam, FUNCTION, ROLE, POLICY, RecordingClock())
    after = lam.get_function_configuration(FunctionName=FUNCTION)
    assert writes(calls) == []
    assert after["RevisionId"] == before["RevisionId"]
    assert after["LastModified"] == before["LastModified"]


def test_a_changed_policy_is_put_again(clients: tuple[Any, Any, list[str]]) -> None:
    lam, iam, calls = clients
    bf.ensure_bridge_function(lam, iam, FUNCTION, ROLE, POLICY, RecordingClock())
    calls.clear()
    other = bf.bridge_policy("aws", "us-east-1", "123456789012", "other", "x", "y/", FUNCTION)
    bf.ensure_bridge_function(lam, iam, FUNCTION, ROLE, other, RecordingClock())
    got = iam.get_role_policy(RoleName=ROLE, PolicyName=bf.POLICY_NAME)["PolicyDocument"]
    assert got == other and writes(calls) == []


def test_changed_code_is_updated(
    clients: tuple[Any, Any, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    lam, iam, calls = clients
    bf.ensure_bridge_function(lam, iam, FUNCTION, ROLE, POLICY, RecordingClock())
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("export_reader.py", "def handler(event, context):\n    return {}\n")
    monkeypatch.setattr(bf, "bridge_zip", lambda: out.getvalue())
    calls.clear()
    bf.ensure_bridge_function(lam, iam, FUNCTION, ROLE, POLICY, RecordingClock())
    conf = lam.get_function_configuration(FunctionName=FUNCTION)
    assert conf["CodeSha256"] == bf.code_sha256(out.getvalue())
    assert writes(calls) == ["UpdateFunctionCode"]


def test_a_changed_configuration_is_put_back(clients: tuple[Any, Any, list[str]]) -> None:
    lam, iam, calls = clients
    bf.ensure_bridge_function(lam, iam, FUNCTION, ROLE, POLICY, RecordingClock())
    lam.update_function_configuration(FunctionName=FUNCTION, Timeout=60, MemorySize=128)
    calls.clear()
    bf.ensure_bridge_function(lam, iam, FUNCTION, ROLE, POLICY, RecordingClock())
    conf = lam.get_function_configuration(FunctionName=FUNCTION)
    assert (conf["Timeout"], conf["MemorySize"]) == (900, 1769)
    assert writes(calls) == ["UpdateFunctionConfiguration"]


def test_create_waits_out_the_roles_propagation(clients: tuple[Any, Any, list[str]]) -> None:
    """moto refuses CreateFunction with AWS's words while the role is unknown to it, as AWS
    does until IAM propagates a new role: the create is retried after a wait."""
    lam, iam, calls = clients
    role_arn = f"arn:aws:iam::123456789012:role/{ROLE}"

    def propagated() -> None:
        iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(bf.LAMBDA_TRUST))

    clock = RecordingClock(then=propagated)
    create = lambda: lam.create_function(  # noqa: E731
        FunctionName=FUNCTION,
        Role=role_arn,
        Code={"ZipFile": bf.bridge_zip()},
        Handler=bf.HANDLER,
        Runtime=bf.RUNTIME,
    )
    bf._call(lam, FUNCTION, clock, create, update=False)
    assert calls.count("CreateFunction") == 2
    assert clock.slept == [bf.ROLE_PROPAGATION_SECONDS]
    assert lam.get_function_configuration(FunctionName=FUNCTION)["Role"] == role_arn


def test_the_waits_come_from_botocores_waiters() -> None:
    assert bf.lambda_waiter("FunctionActiveV2") == (1.0, 300)
    assert bf.lambda_waiter("FunctionUpdatedV2") == (1.0, 300)


def test_the_policy_is_least_privilege() -> None:
    by_sid = {s["Sid"]: s for s in POLICY["Statement"]}
    assert by_sid["ReadExport"]["Action"] == ["s3:GetObject"]
    assert by_sid["ReadExport"]["Resource"] == ["arn:aws:s3:::exports/rb/run/step/export/*"]
    assert by_sid["WriteReaderInput"]["Resource"] == ["arn:aws:s3:::exports/rb/run/step/reader/*"]
    group = f"arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/{FUNCTION}"
    assert by_sid["OwnLogs"]["Resource"] == [group, group + ":*"]
    findings = analyze_policy_string(json.dumps(POLICY)).findings
    assert [(f.issue, f.detail) for f in findings] == []
