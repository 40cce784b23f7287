"""Two worlds seeded alike in two moto accounts of one server: a reference run and a run that
something goes wrong in, compared at the end item for item. Pieces shared by the crash and the
network-fault suites."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from engine.aws import dynamo
from engine.aws.target import Connection, local_connection
from engine.cli.app import main
from engine.rehearsal.seed import seed_world
from tests.support.approvals import as_flags, manual_items

FIRST, SECOND = "123456789012", "111111111111"  # two moto accounts, one server


def credentials(url: str, account: str) -> dict[str, str]:
    """Environment credentials for `account` (moto ties assumed-role keys to its account)."""
    if account == FIRST:
        return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    sts = local_connection(url, "us-east-1").client("sts")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/ref", RoleSessionName="ref")
    c = creds["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": c["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": c["SecretAccessKey"],
        "AWS_SESSION_TOKEN": c["SessionToken"],
    }


def session_for(env: dict[str, str]) -> boto3.Session:
    return boto3.Session(
        region_name="us-east-1",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env.get("AWS_SESSION_TOKEN"),
    )


def seed_accounts(url: str, rb: Any, scale: int) -> dict[str, dict[str, str]]:
    """Both accounts seeded alike; their credentials by account."""
    env: dict[str, dict[str, str]] = {}
    for account in (FIRST, SECOND):
        env[account] = credentials(url, account)
        connection = Connection(session_for(env[account]), "us-east-1", url)
        seed_world(connection, rb, f"world-{account}", scale=scale)
    return env


def common(url: str, journal: Path, rb_path: Path) -> list[str]:
    return ["--runbook", str(rb_path), "--endpoint-url", url, "--journal", str(journal)]


def answer_waiting(
    argv: list[str], rb: Any, capsys: pytest.CaptureFixture[str], by: str
) -> dict[str, str]:
    """Answer the gate or manual step the run waits at, as an operator would (in-process)."""
    capsys.readouterr()
    assert main(["status", "--json", *argv]) == 0
    waiting = json.loads(capsys.readouterr().out)["waiting"]
    if waiting["kind"] == "step":
        assert main(["ack", waiting["id"], "--by", by, *argv]) == 0
        return waiting
    gate = rb.gate(waiting["id"])
    for i, item in enumerate(manual_items(gate)):
        assert main(["tick", gate.id, item.id, "--by", by, *as_flags(i), *argv]) == 0
    if main(["decide", gate.id, "--go", "--by", by, *argv]) != 0:
        assert main(["decide", gate.id, "--go", "--by", by, "--override", "x", *argv]) == 0
    return waiting


def world_items(url: str, env: dict[str, str], ts: str) -> dict[str, list[str]]:
    """Every DynamoDB table -> its items, canonical and sorted, the run's timestamp masked."""
    ddb = session_for(env).client("dynamodb", endpoint_url=url)
    out: dict[str, list[str]] = {}
    for name in ddb.list_tables()["TableNames"]:
        rows = [
            json.dumps(item, sort_keys=True, default=str).replace(ts, "<run-ts>")
            for page, _ in dynamo.scan_pages(ddb, name)
            for item in page
        ]
        out[name] = sorted(rows)
    return out
