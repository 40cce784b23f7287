"""Faults at the boto3 level, injected with a botocore `before-send` hook (registered first, so
it answers before moto): throttling, UnprocessedItems, 500 and 503, connection refused, a hung
endpoint (its read timeout firing), slow responses. Retries survive each; once they are
exhausted the step fails naming the resource, and `run` resumes it. A stop during a call that
hangs is honoured within 2 s."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions as be
import pytest
from botocore.awsrequest import AWSResponse

from engine.aws import dynamo
from engine.aws.target import Connection
from engine.run.engine import Engine
from tests.support.actions import run
from tests.support.legacy_data import EXPENSES, T_EXPENSES, build, target_items
from tests.support.paths import MINI_RUNBOOK
from tests.support.world import seeded_engine

JSON = {"content-type": "application/x-amz-json-1.0"}


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def _response(url: str, status: int, body: dict[str, Any] | None = None) -> AWSResponse:
    raw = json.dumps(body).encode() if body is not None else b""
    return AWSResponse(url, status, JSON, _Raw(raw))


def _operation(request: Any) -> str:
    target = request.headers.get("X-Amz-Target", b"")
    target = target.decode() if isinstance(target, bytes) else str(target)
    return target.rsplit(".", 1)[-1] if target else request.url.split("/")[-1]


class Faults:
    """Injects the fault planned for the n-th matching request (deterministic, no clock)."""

    def __init__(self, plan: dict[int, str], only: set[str] | None = None) -> None:
        self.arm(plan, only)
        self.injected: list[str] = []
        self.hang = threading.Event()  # set: every request blocks until released
        self.release = threading.Event()
        self.lock = threading.Lock()

    def arm(self, plan: dict[int, str], only: set[str] | None = None) -> None:
        """From now on, the n-th request (of `only` operations) gets plan[n]."""
        self.plan, self.only, self.seen = plan, only, 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        op = _operation(request)
        if self.hang.is_set():
            self.release.wait(30)
            raise be.ReadTimeoutError(endpoint_url=request.url)
        if self.only is not None and op not in self.only:
            return None
        with self.lock:
            self.seen += 1
            kind = self.plan.get(self.seen)
            if kind == "unprocessed" and op != "BatchWriteItem":
                kind = None
            if kind:
                self.injected.append(f"{kind}:{op}")
        if kind == "throttle":
            return _response(request.url, 400, {
                "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "message": "injected throttling",
            })  # fmt: skip
        if kind == "unprocessed":  # nothing written: every request comes back unprocessed
            unprocessed = json.loads(request.body)["RequestItems"]
            return _response(request.url, 200, {"UnprocessedItems": unprocessed})
        if kind == "500":
            return _response(request.url, 500, {"__type": "InternalServerError", "message": "x"})
        if kind == "503":
            return _response(request.url, 503)
        if kind == "refused":
            raise be.EndpointConnectionError(endpoint_url=request.url)
        if kind == "timeout":  # a hung endpoint: the read timeout fires, botocore retries
            raise be.ReadTimeoutError(endpoint_url=request.url)
        if kind == "slow":
            time.sleep(0.3)
        return None


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> Faults:
    hook = Faults({})
    original = Connection.client

    def client(self: Connection, service: str) -> Any:
        made = service not in self._clients
        c = original(self, service)
        if made:
            c.meta.events.register_first("before-send", hook)
        return c

    monkeypatch.setattr(Connection, "client", client)
    return hook


EVERY_KIND = ["throttle", "500", "503", "refused", "timeout", "slow", "slow", "throttle"]


# transactions of 10 on pages of 50, so the transact path sends as many requests to fault
PATHS = {
    "put": {"write_path": "put"},
    "transact": {"write_path": "transact", "transact_size": 10, "page_size": 50},
}


@pytest.mark.parametrize("path", PATHS)
def test_migration_survives_every_fault_kind(
    aws, make_ctx, runbook, faults: Faults, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    import tests.support.legacy_data as data

    monkeypatch.setattr(data, "N_EXPENSES", 400)  # the faults matter, not the volume
    expected = build(aws, runbook)
    ctx, _ = make_ctx("create-orphan-companies", aws)
    run(ctx, "company_mapping", {"apply": True})
    actx, _ = make_ctx("analyze-data-volume", aws, journal=ctx.journal)
    run(actx, "analyze_legacy", {"entities": ["expenses"]})
    # a fault every 4th DynamoDB request of the migration, each kind in turn
    faults.arm({4 * (n + 1): kind for n, kind in enumerate(EVERY_KIND * 3)})
    mctx, _ = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    m = run(mctx, "migrate_entity", {"entity": "expenses", **PATHS[path]})
    assert {k.split(":")[0] for k in faults.injected} >= set(EVERY_KIND) - {"unprocessed"}
    assert m["scanned"] == m["source_total"] == expected["source"]
    assert m["migrated"] == expected["migrated"]
    # + the application's newer copies, + own-1 owned by another user
    assert len(target_items(aws, T_EXPENSES)) == expected["migrated"] + data.NEWER + 1


def test_batch_writes_resend_unprocessed_items(aws, runbook, faults: Faults) -> None:
    from engine.rehearsal.seed import create_table

    spec = runbook.find_table(EXPENSES)
    ddb = aws.client("dynamodb")
    create_table(ddb, spec)
    faults.arm({1: "unprocessed", 2: "throttle", 3: "unprocessed", 4: "503"}, {"BatchWriteItem"})
    items = [{"userId": f"u{n % 5}", "expenseId": f"e{n:03d}", "amount": n} for n in range(60)]
    dynamo.batch_write(ddb, EXPENSES, dynamo.put_requests(items), None)
    assert [k.split(":")[0] for k in faults.injected] == ["unprocessed", "throttle",
                                                           "unprocessed", "503"]  # fmt: skip
    assert len(target_items(aws, EXPENSES)) == 60


@pytest.fixture
def engine(aws: Connection, tmp_path: Path, faults: Faults) -> Engine:
    return seeded_engine(aws, tmp_path / "j.toml", MINI_RUNBOOK, "world-faults", time_scale=1000)


def test_exhausted_retries_fail_the_step_naming_the_resource_then_run_resumes(
    engine: Engine, faults: Faults
) -> None:
    faults.arm(dict.fromkeys(range(1, 60), "503"), {"CreateBackup"})  # every attempt fails
    outcome = engine.run()
    assert outcome.status == "failed" and outcome.failed_step == "backup-tables"
    assert "mini-legacy" in outcome.message or "mini-company" in outcome.message, outcome.message
    assert "503" in outcome.message or "ServiceUnavailable" in outcome.message, outcome.message
    state = engine.journal.step("backup-tables")
    assert state.status == "failed" and "TableName=" in (state.error or "")
    faults.arm({})
    assert engine.run().status == "waiting"  # resumed, finished, now at gate-phase2
    assert engine.journal.step("backup-tables").status == "done"
    assert len(engine.journal.step("backup-tables").cursors["backups"]) == 3


def test_a_stop_during_a_hung_call_is_honoured_within_two_seconds(
    engine: Engine, faults: Faults
) -> None:
    outcomes: list[Any] = []
    faults.hang.set()  # every call now blocks, as on an endpoint that accepts and never answers
    runner = threading.Thread(target=lambda: outcomes.append(engine.run()), daemon=True)
    runner.start()
    deadline = time.monotonic() + 10
    while engine.journal.step("backup-tables").status != "running":
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.01)
    time.sleep(0.3)  # let the first call block (the hang has no observable event of its own)
    asked = time.monotonic()
    engine.request_stop()
    runner.join(5)
    took = time.monotonic() - asked
    faults.release.set()
    assert outcomes and outcomes[0].status == "interrupted", outcomes
    assert took < 2.0, took
    faults.hang.clear()
    assert engine.run().status == "waiting"  # resumed after the endpoint came back
    assert engine.journal.step("backup-tables").status == "done"
