"""An emulator on this machine or a private network gets the loopback read timeout (a slow
answer there is load, not a hung endpoint); AWS keeps seconds; --read-timeout overrides both."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.aws.target import LOOPBACK_READ_TIMEOUT, TargetSpec, connect, is_local_endpoint

REPO = Path(__file__).resolve().parents[3]
MINI_RUNBOOK = REPO / "tests" / "data" / "mini-runbook.toml"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5000",
        "http://localhost:4566",
        "http://10.0.3.7:4566",
        "http://192.168.1.20:8000",
        "http://172.20.0.2:4566",
        "http://[::1]:5000",
        "http://[fd00::12]:5000",
        "http://169.254.1.1:80",
    ],
)
def test_emulator_addresses_are_local(url: str) -> None:
    assert is_local_endpoint(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://dynamodb.us-east-1.amazonaws.com",
        "http://8.8.8.8:4566",
        "http://no-such-host.invalid:4566",
        "not a url",
    ],
)
def test_aws_public_and_unresolvable_endpoints_are_not(url: str) -> None:
    assert not is_local_endpoint(url)


def read_timeouts(spec: TargetSpec) -> dict[str, float]:
    conn = connect(spec, "us-east-1")
    return {svc: conn.client(svc).meta.config.read_timeout for svc in ("dynamodb", "lambda")}


def test_a_private_emulator_gets_the_loopback_timeout() -> None:
    spec = TargetSpec(endpoint_url="http://10.0.3.7:4566")
    assert read_timeouts(spec) == {
        "dynamodb": LOOPBACK_READ_TIMEOUT,
        "lambda": LOOPBACK_READ_TIMEOUT,
    }


def test_a_public_endpoint_keeps_the_aws_timeouts() -> None:
    assert read_timeouts(TargetSpec(endpoint_url="http://8.8.8.8:4566")) == {
        "dynamodb": 10,
        "lambda": 15,
    }


def test_emulators_configured_per_service_get_the_loopback_timeout(monkeypatch) -> None:
    """Without --endpoint-url, botocore's endpoint configuration: every service on emulators."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://192.168.5.5:8000")
    spec = TargetSpec(region="eu-west-1")
    assert spec.kind == "endpoint"
    assert set(read_timeouts(spec).values()) == {LOOPBACK_READ_TIMEOUT}


def test_the_operator_sets_the_timeout_for_any_target() -> None:
    assert set(read_timeouts(TargetSpec("http://10.0.0.1:1", read_timeout=600)).values()) == {600}
    assert set(read_timeouts(TargetSpec(region="eu-west-1", read_timeout=30)).values()) == {30}


@pytest.mark.parametrize(
    ("value", "said"),
    [("0", "must be from 1 to 3600 seconds"), ("abc", "not a number of seconds"),
     ("nan", "must be from 1"), ("1e9", "must be from 1")],
)  # fmt: skip
def test_a_bad_read_timeout_is_one_line_exit_2(tmp_path: Path, value: str, said: str) -> None:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "xdg")}
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "status", "--runbook", str(MINI_RUNBOOK),
         "--endpoint-url", "http://127.0.0.1:1", "--read-timeout", value],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and said in done.stderr and "--read-timeout" in done.stderr
    assert not (tmp_path / "xdg").exists()
