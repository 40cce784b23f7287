"""Issue 8, item 6: endpoints the AWS CLI way (env / profile config when no --endpoint-url)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.aws.target import TargetSpec, connect, identify, local_connection
from engine.rehearsal.seed import seed_world
from tests.support.actions import run

ENDPOINT_VARS = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_CONFIG_FILE")


def _moto_server() -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.rehearsal.moto_process", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:  # poll the observable condition: the port accepts connections
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("moto server did not start") from None
            time.sleep(0.05)


@pytest.fixture
def two_emulators(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """Two separate moto worlds (separate processes): one for DynamoDB, one for the rest."""
    for var in ENDPOINT_VARS:
        monkeypatch.delenv(var, raising=False)
    a, url_a = _moto_server()
    b, url_b = _moto_server()
    try:
        yield url_a, url_b
    finally:
        for proc in (a, b):
            proc.terminate()
            proc.wait(10)


def test_dynamodb_on_one_emulator_everything_else_on_another(
    two_emulators, monkeypatch, make_ctx, runbook
):
    rest, dynamo = two_emulators
    monkeypatch.setenv("AWS_ENDPOINT_URL", rest)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamo)
    spec = TargetSpec(region="us-east-1")
    assert spec.kind == "endpoint"  # every service away from AWS: a rehearsal target
    conn = connect(spec, "us-east-1")
    assert conn.client("dynamodb").meta.endpoint_url == dynamo
    assert conn.client("lambda").meta.endpoint_url == rest
    target = identify(spec, conn)
    assert target.identity == f"dynamodb={dynamo}, *={rest}" and target.endpoint_url is None

    seed_world(conn, runbook, "world-split")
    only_rest = local_connection(rest, "us-east-1")
    only_dynamo = local_connection(dynamo, "us-east-1")
    assert only_rest.client("dynamodb").list_tables()["TableNames"] == []
    assert len(only_dynamo.client("dynamodb").list_tables()["TableNames"]) == 17
    assert only_dynamo.client("lambda").list_functions()["Functions"] == []
    ctx, _ = make_ctx("inventory", conn)
    s = run(ctx, "inventory_diff", {})
    assert s["missing"] == 0 and s["tables_live"] == 17 and s["functions_live"] > 0

    # --endpoint-url wins over the environment, like the AWS CLI's
    explicit = TargetSpec(endpoint_url=rest, region="us-east-1")
    assert connect(explicit, "us-east-1").client("dynamodb").meta.endpoint_url == rest
    # the embedded world passes its URL explicitly: configuration never moves it
    assert local_connection(rest, "us-east-1").client("dynamodb").meta.endpoint_url == rest


def test_a_profile_endpoint_url_and_its_services_section(monkeypatch, tmp_path: Path):
    for var in ENDPOINT_VARS:
        monkeypatch.delenv(var, raising=False)
    config = tmp_path / "config"
    config.write_text(
        "[profile emu]\nregion = us-east-1\nendpoint_url = http://127.0.0.1:4566\n"
        "services = emu-services\n\n[services emu-services]\ndynamodb =\n"
        "  endpoint_url = http://127.0.0.1:8000\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    spec = TargetSpec(profile="emu")
    assert spec.kind == "endpoint"
    found = spec.endpoints()
    assert found["dynamodb"] == "http://127.0.0.1:8000"
    assert found["lambda"] == found["sts"] == "http://127.0.0.1:4566"


def test_any_service_left_on_aws_is_a_real_account(monkeypatch):
    for var in ENDPOINT_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000")
    spec = TargetSpec(region="eu-west-1")
    assert spec.kind == "aws"  # time-scale refused, STS identifies the account
    found = spec.endpoints()
    assert found["dynamodb"] == "http://127.0.0.1:8000"
    assert found["lambda"] == "https://lambda.eu-west-1.amazonaws.com"
    assert TargetSpec().kind == "embedded"  # no flags: the local world, whatever is configured


def test_a_loopback_moto_server_is_given_time_a_real_account_is_not() -> None:
    """A loopback moto shares the machine with the migration (its Scan sorts the whole table per
    page): a slow answer is load, and abandoning it only adds a retry. AWS keeps 10 s."""
    from engine.aws.target import LOOPBACK_READ_TIMEOUT

    local = local_connection("http://127.0.0.1:1", "us-east-1")
    assert local.client("dynamodb").meta.config.read_timeout == LOOPBACK_READ_TIMEOUT >= 60
    assert local.resource("dynamodb").meta.client.meta.config.read_timeout == LOOPBACK_READ_TIMEOUT
    real = connect(TargetSpec(region="eu-west-1"), "us-east-1")
    assert real.client("dynamodb").meta.config.read_timeout == 10
    assert real.client("lambda").meta.config.read_timeout == 15
