"""Issue 8, item 8: the data path against dynalite, a DynamoDB stricter than moto.

dynalite (npm, pure JavaScript) rejects what AWS rejects where moto lets it through (26-item
batches, a GSI key of the wrong type) and keeps new tables CREATING for a while, as AWS does.
It has no backups, PITR or transactions, so this tier covers the data path only: seed,
inventory, mapping, migrate, validate, and the data rollback. DynamoDB goes to dynalite, every
other service to moto, through botocore's per-service endpoint configuration (item 6).

Any ValidationException dynalite answers fails the test. Locally the tier is skipped when node
or dynalite is missing (install: `npm install --prefix .ci/node dynalite`); under CI=true it fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from engine.aws.target import TargetSpec, connect
from engine.rehearsal.seed import WorldShape, seed_world
from tests.support.actions import run, step_params
from tests.support.paths import REPO

ROOT = REPO
CANDIDATES = (
    ROOT / ".ci" / "node" / "node_modules" / "dynalite" / "cli.js",
    ROOT / "node_modules" / "dynalite" / "cli.js",
)
CREATE_TABLE_MS = 150  # tables stay CREATING this long: waits are exercised, not skipped
ENTITIES = ["expenses", "projects", "contractors", "works"]
TWIN = "exp-000000"  # user-alice's first expense; user-alice belongs to comp-acme

NO_STREAMS = WorldShape(legacy_stream=False)  # dynalite has no DynamoDB Streams


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"dynalite tier must run in CI: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dynalite() -> Iterator[str]:
    node = shutil.which("node")
    if node is None:
        _unavailable("node is not installed (CI installs it from .ci/run)")
    cli = next((c for c in CANDIDATES if c.exists()), None)
    if cli is None:
        _unavailable("dynalite is not installed: npm install --prefix .ci/node dynalite")
    port = _free_port()
    proc = subprocess.Popen(
        [
            node,
            str(cli),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--createTableMs",
            str(CREATE_TABLE_MS),
            "--deleteTableMs",
            "50",
            "--updateTableMs",
            "50",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:  # the observable condition: the port accepts connections
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"dynalite did not start on port {port}")
            time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def split(dynalite: str, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """DynamoDB on dynalite, the rest on moto; every dynalite ValidationException recorded."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynalite)
    conn = connect(TargetSpec(region="us-east-1"), "us-east-1")
    assert conn.client("dynamodb").meta.endpoint_url == dynalite
    rejected: list[str] = []

    def watch(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        code = parsed.get("Error", {}).get("Code", "")
        if code == "ValidationException":
            rejected.append(f"{model.name}: {parsed['Error'].get('Message', '')}")

    conn.client("dynamodb").meta.events.register("after-call.dynamodb", watch)
    conn.rejected = rejected  # type: ignore[attr-defined]
    return conn


def _count(ddb: Any, table: str) -> int:
    total, kwargs = 0, {"TableName": table, "Select": "COUNT"}
    while True:
        page = ddb.scan(**kwargs)
        total += page["Count"]
        if "LastEvaluatedKey" not in page:
            return total
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_tables_start_creating_and_the_seed_waits(dynalite, runbook):
    from engine.aws.target import local_connection
    from engine.rehearsal.seed import create_table, wait_tables_active

    ddb = local_connection(dynalite, "us-east-1").client("dynamodb")
    spec = runbook.inventory.tables[5]  # company expenses, with its GSI
    create_table(ddb, spec)
    assert ddb.describe_table(TableName=spec.name)["Table"]["TableStatus"] == "CREATING"
    wait_tables_active(ddb, [spec.name])
    assert ddb.describe_table(TableName=spec.name)["Table"]["TableStatus"] == "ACTIVE"


@pytest.mark.slow
def test_data_path_and_data_rollback_on_dynalite(split, make_ctx, runbook):
    ddb = split.client("dynamodb")
    created = time.monotonic()
    seed_world(split, runbook, "world-dynalite", shape=NO_STREAMS)
    assert time.monotonic() - created >= CREATE_TABLE_MS / 1000  # the seed waited for ACTIVE
    tables = ddb.list_tables()["TableNames"]
    assert len(tables) == len(runbook.inventory.tables)
    assert {ddb.describe_table(TableName=t)["Table"]["TableStatus"] for t in tables} == {"ACTIVE"}
    before = {t: _count(ddb, t) for t in tables}

    ctx, _ = make_ctx("inventory", split)
    inv = run(ctx, "inventory_diff", {})
    assert inv["missing"] == 0 and inv["count_differences"] == 0, inv
    journal = ctx.journal
    for step_id, action in (
        ("mapping-document", "company_mapping"),
        ("analyze-data-volume", "analyze_legacy"),
        ("create-orphan-companies", "company_mapping"),
    ):
        c, _ = make_ctx(step_id, split, journal=journal)
        run(c, action, step_params(runbook, step_id))
    migrated = 0
    for entity in ENTITIES:
        c, _ = make_ctx(f"migrate-{entity}", split, journal=journal)
        s = run(c, "migrate_entity", step_params(runbook, f"migrate-{entity}"))
        assert s["quarantined"] == 0 and s["collisions"] == 0, s
        migrated += s["migrated"]
    assert migrated == sum(before[e.source] for e in runbook.entities)
    for entity in runbook.entities:
        assert _count(ddb, entity.target) == before[entity.target] + before[entity.source]
    c, _ = make_ctx("validate-migration", split, journal=journal)
    v = run(c, "validate_migration", step_params(runbook, "validate-migration"))
    assert v["records_missing"] == 0, v

    # rollback-data: what the run wrote goes, what was there stays
    for n, rb_step in enumerate(runbook.rollbacks[0].steps):
        r, _ = make_ctx(f"rollback-data#{n}", split, journal=journal)
        run(r, rb_step.action, dict(rb_step.params))
    assert {t: _count(ddb, t) for t in tables} == before
    assert split.rejected == [], "dynalite rejected requests:\n" + "\n".join(split.rejected)


def _to_migration(split: Any, make_ctx: Any, runbook: Any) -> Any:
    seed_world(split, runbook, "world-dynalite", shape=NO_STREAMS)
    ctx, _ = make_ctx("mapping-document", split)
    for step_id in ("mapping-document", "create-orphan-companies"):
        c, _ = make_ctx(step_id, split, journal=ctx.journal)
        run(c, "company_mapping", step_params(runbook, step_id))
    return ctx.journal


@pytest.mark.slow
def test_application_twin_survives_the_migration_on_dynalite(split, make_ctx, runbook):
    """A newer twin the application wrote (dual-write) makes the conditional put fail; the
    migration must leave it alone and count it."""
    ddb = split.client("dynamodb")
    journal = _to_migration(split, make_ctx, runbook)
    expenses = runbook.entity("expenses")
    legacy = ddb.get_item(
        TableName=expenses.source, Key={"userId": {"S": "user-alice"}, "expenseId": {"S": TWIN}}
    )["Item"]
    twin = {k: v for k, v in legacy.items() if k != "userId"} | {
        "companyId": {"S": "comp-acme"},
        "createdBy": {"S": "user-alice"},
        "createdAt": {"S": "2024-01-01T00:00:00Z"},
        "updatedAt": {"S": "2099-01-01T00:00:00Z"},
        "amount": {"N": "1"},
    }
    ddb.put_item(TableName=expenses.target, Item=twin)
    c, _ = make_ctx("migrate-expenses", split, journal=journal)
    s = run(c, "migrate_entity", step_params(runbook, "migrate-expenses"))
    assert s["skipped_newer"] == 1 and s["migrated"] == _count(ddb, expenses.source) - 1
    kept = ddb.get_item(
        TableName=expenses.target,
        Key={"companyId": {"S": "comp-acme"}, "expenseId": {"S": TWIN}},
    )["Item"]
    assert kept["amount"] == {"N": "1"}  # the application's write survived
    assert split.rejected == [], "dynalite rejected requests:\n" + "\n".join(split.rejected)
