"""The step-functions backend's test world (issue 23): in-process moto that executes state
machines, the data tests' legacy dataset as Phases 1 and 2 leave it, and what two runs are
compared by (target items, ledgers, counts, validation)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto import mock_aws

from engine.aws.target import DUMMY_CREDENTIALS, Connection
from engine.rehearsal.seed import create_table
from tests.support.actions import run
from tests.support.legacy_data import EXPENSES, MEMBERS, T_EXPENSES, build, target_items

N = 104  # > 100: exp-00100 has an older application copy the migration replaces
BUCKET = "runbook-exports-test"
SFN_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}}
SFN_PARAMS = {
    "entity": "expenses",
    "backend": "step-functions",
    "bucket": BUCKET,
    "poll_seconds": 0.2,
    "max_concurrency": 16,
    "child_type": "STANDARD",  # moto 5.2.6 parses no EXPRESS children
}


@contextmanager
def quiet_interpreter() -> Iterator[None]:
    """moto's ASL interpreter logs each path it does not find (IsPresent false) with the whole
    state's repr; the embedded server silences it the same way."""
    log = logging.getLogger("moto.stepfunctions")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


@contextmanager
def moto_world(execute: bool = True) -> Iterator[Connection]:
    """An in-process moto world; `execute`: it runs state machines."""
    with quiet_interpreter(), mock_aws(config=SFN_CONFIG if execute else None):
        session = boto3.Session(region_name="us-east-1", **DUMMY_CREDENTIALS)
        yield Connection(session, "us-east-1")


SMALL_EXPECTED = {
    "source": 11,
    "migrated": 5,
    "skipped_newer": 1,
    "collisions": 3,
    "quarantined": 2,
}


def small_world(conn: Connection, runbook: Any) -> dict[str, int]:
    """Eleven legacy expenses, one of each outcome: migrated (with and without createdAt, an
    orphan's), skipped (a newer application write), collisions (two users on one key, a key
    another user owns in the target), quarantined (a missing amount, an index key of the wrong
    type). Returns the expected counts."""
    ddb = conn.client("dynamodb")
    for spec in runbook.inventory.tables:
        create_table(ddb, spec)
    res = conn.resource("dynamodb")
    with res.Table(MEMBERS).batch_writer() as w:
        for company, user in (("comp-a", "u-1"), ("comp-a", "u-3"), ("comp-b", "u-2")):
            w.put_item(Item={"companyId": company, "userId": user, "role": "admin"})
    base = {"amount": 10, "date": "2024-05-01", "description": "tiles"}
    legacy = [
        {"userId": "u-1", "expenseId": "e-1", **base},
        {"userId": "u-1", "expenseId": "e-2", **base, "createdAt": "2024-01-02T03:04:05Z"},
        {"userId": "u-2", "expenseId": "e-3", **base, "tags": {"x", "y"}, "invoiceNum": "I-3"},
        {"userId": "u-orphan", "expenseId": "e-4", **base},
        {"userId": "u-2", "expenseId": "e-5", **base, "nested": {"a": [1, "b", {"c": True}]}},
        {"userId": "u-1", "expenseId": "newer-1", **base},
        {"userId": "u-1", "expenseId": "dup-1", **base},
        {"userId": "u-3", "expenseId": "dup-1", **base},
        {"userId": "u-2", "expenseId": "own-1", **base},
        {"userId": "u-1", "expenseId": "bad-1", "date": "2024-05-01"},
        {"userId": "u-2", "expenseId": "bad-2", **base, "invoiceNum": 42},
    ]
    with res.Table(EXPENSES).batch_writer() as w:
        for item in legacy:
            w.put_item(Item=item)
    stamps = {"createdAt": "2024-11-01T00:00:00Z", "amount": 99, "date": "2025-01-01"}
    with res.Table(T_EXPENSES).batch_writer() as w:
        w.put_item(
            Item={
                "companyId": "comp-a",
                "expenseId": "newer-1",
                "createdBy": "u-1",
                "updatedAt": "2025-01-01T00:00:00Z",
                **stamps,
            }
        )
        w.put_item(Item={"companyId": "comp-b", "expenseId": "own-1", "createdBy": "u-9",
                         "updatedAt": "2024-11-01T00:00:00Z", **stamps})  # fmt: skip
    return dict(SMALL_EXPECTED)


def prepare(
    conn: Connection, make_ctx: Callable[..., Any], runbook: Any, small: bool = False
) -> tuple[Any, dict]:
    """The legacy world (the data tests' at N expenses, or the small one), PITR on its
    expenses, the export bucket, the mapping and the analysis; returns the journal and the
    expected counts."""
    expected = small_world(conn, runbook) if small else build(conn, runbook, n_expenses=N)
    conn.client("dynamodb").update_continuous_backups(
        TableName=EXPENSES, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    conn.client("s3").create_bucket(Bucket=BUCKET)
    ctx, _ = make_ctx("mapping-document", conn)
    run(ctx, "company_mapping", {"apply": True})
    actx, _ = make_ctx("analyze-data-volume", conn, journal=ctx.journal)
    run(actx, "analyze_legacy", {"entities": ["expenses"]})
    return ctx.journal, expected


def target(conn: Connection) -> list[dict[str, Any]]:
    items = target_items(conn, T_EXPENSES)
    return sorted(items, key=lambda i: (i["companyId"], i["expenseId"]))


def ledgers(ctx: Any) -> tuple[str, str]:
    return (
        ctx.artifact("quarantine-expenses.jsonl").read_text(),
        ctx.artifact("collisions-expenses.jsonl").read_text(),
    )


def outcome(summary: dict[str, Any]) -> dict[str, int]:
    keys = ("source_total", "migrated", "skipped_newer", "collisions", "quarantined")
    return {k: summary[k] for k in keys}


def validation(v: dict[str, Any]) -> dict[str, Any]:
    """What validate-migration found (its performance block aside: no traffic here)."""
    return {k: v[k] for k in ("recordCounts", "dataIntegrity", "issues", "records_missing", "ok")}


def closed(conn: Connection, execution_arn: str, seconds: float = 30) -> str:
    """The execution's status once it is no longer RUNNING (a stopped one closes soon)."""
    sfn = conn.client("stepfunctions")
    deadline = time.monotonic() + seconds
    while True:
        status = str(sfn.describe_execution(executionArn=execution_arn)["status"])
        if status != "RUNNING" or time.monotonic() > deadline:
            return status
        threading.Event().wait(0.1)


def executions(conn: Connection, execution_arn: str) -> list[dict[str, Any]]:
    """Every execution of the state machine that ran this one."""
    sfn = conn.client("stepfunctions")
    machine = sfn.describe_execution(executionArn=execution_arn)["stateMachineArn"]
    return list(sfn.list_executions(stateMachineArn=machine)["executions"])


def local_backend(
    make_ctx: Callable[..., Any], runbook: Any, small: bool = False
) -> dict[str, Any]:
    """The local backend on the same dataset, in a world of its own: its target, ledgers,
    counts and validation."""
    with moto_world(execute=False) as conn:
        journal, expected = prepare(conn, make_ctx, runbook, small)
        mctx, _ = make_ctx("migrate-expenses", conn, journal=journal)
        summary = run(mctx, "migrate_entity", {"entity": "expenses", "segments": 2})
        assert summary["backend"] == "local"
        vctx, _ = make_ctx("validate-migration", conn, journal=journal)
        checked = run(vctx, "validate_migration", {"entities": ["expenses"]})
        return {
            "target": target(conn),
            "ledgers": ledgers(mctx),
            "outcome": outcome(summary),
            "validation": validation(checked),
            "expected": expected,
        }


class CallRecorder:
    """Every API call the clients of `conn` make from now on (botocore's before-parameter-build
    hook): (service, operation, params)."""

    def __init__(self, conn: Connection) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self._client = conn.client
        self._hooked: set[int] = set()
        conn.client = self.client  # type: ignore[method-assign]

    def client(self, service: str) -> Any:
        made = self._client(service)
        if id(made) not in self._hooked:
            self._hooked.add(id(made))
            name = made.meta.service_model.service_name

            def record(params: dict[str, Any], model: Any, **_: Any) -> None:
                self.calls.append((name, model.name, dict(params)))

            made.meta.events.register("before-parameter-build", record)
        return made
