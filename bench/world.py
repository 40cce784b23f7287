"""A moto server in its own process, legacy expenses seeded, and a way to run one action on it
exactly as the engine does (an ActionContext over a journal file)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.actions import registry
from engine.aws import dynamo
from engine.aws.target import Connection, local_connection
from engine.core.clock import Clock
from engine.core.context import ActionContext
from engine.plan.loader import default_runbook_path, load_runbook
from engine.rehearsal.seed import create_table
from engine.rehearsal.world import EMBEDDED
from engine.runbook.model import Runbook
from engine.state.journal import Journal, JournalStore, RunMeta, Target

MIGRATION_TS = "2026-11-29T00:00:00Z"
USERS = [f"user-{n}" for n in range(7)]  # the plan's legacy users: few, so segments are uneven
COMPANY = {u: f"comp-{n % 3}" for n, u in enumerate(USERS)}


def runbook() -> Runbook:
    return load_runbook(default_runbook_path()).runbook


def tables(rb: Runbook) -> dict[str, Any]:
    return {t.name: t for t in rb.inventory.tables}


class MotoServer:
    """`python -m engine.rehearsal.moto_process` on a free loopback port, as the console runs it."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine.rehearsal.moto_process", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("moto server did not start")

    def connection(self) -> Connection:
        return local_connection(self.url, "us-east-1")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:  # a loaded machine: do not leave it behind
            self.proc.kill()
            self.proc.wait(10)


def expense(n: int) -> dict[str, Any]:
    """About 300 bytes, like the plan's expenses."""
    return {
        "userId": USERS[n % len(USERS)],
        "expenseId": f"exp-{n:07d}",
        "amount": Decimal(n % 997) + Decimal("0.25"),
        "date": f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}",
        "description": f"Expense {n}: materials and labour for the site, invoice attached",
        "projectId": f"pro-{n % 50:04d}",
        "invoiceNum": f"INV-{n:08d}",
        "category": ("materials", "labour", "equipment", "permits")[n % 4],
        "notes": "x" * 80,
    }


def seed(conn: Connection, rb: Runbook, n: int) -> None:
    ddb = conn.client("dynamodb")
    for spec in rb.inventory.tables:
        if spec.name not in ddb.list_tables().get("TableNames", []):
            create_table(ddb, spec)
    members = rb.mapping.company_users_table if rb.mapping else ""
    dynamo.batch_write(
        ddb,
        members,
        dynamo.put_requests(
            [{"companyId": c, "userId": u, "role": "admin"} for u, c in COMPANY.items()]
        ),
    )
    source = entity(rb).source
    batch: list[dict[str, Any]] = []
    for i in range(n):
        batch.append(expense(i))
        if len(batch) == 500:
            dynamo.batch_write(ddb, source, dynamo.put_requests(batch))
            batch = []
    dynamo.batch_write(ddb, source, dynamo.put_requests(batch))


def entity(rb: Runbook) -> Any:
    return next(e for e in rb.entities if e.name == "expenses")


def reset_target(conn: Connection, rb: Runbook, name: str | None = None) -> str:
    """An empty copy of the company expenses table (GSI included)."""
    ddb = conn.client("dynamodb")
    spec = tables(rb)[entity(rb).target]
    if name:
        spec = spec.model_copy(update={"name": name})
    with contextlib.suppress(ddb.exceptions.ResourceNotFoundException):
        ddb.delete_table(TableName=spec.name)
    create_table(ddb, spec)
    return spec.name


def new_journal(rb: Runbook) -> Journal:
    run = RunMeta(
        runbook_id=rb.runbook.id,
        runbook_sha256="0" * 64,
        operator="bench",
        target=Target(kind="endpoint", identity="bench", region=rb.runbook.region),
        started_at=MIGRATION_TS,
        migration_ts=MIGRATION_TS,
    )
    return Journal(run=run)


def run_action(
    rb: Runbook,
    conn: Connection,
    store: JournalStore,
    journal: Journal,
    step_id: str,
    name: str,
    params: dict[str, Any],
    emit: Any = None,
) -> dict[str, Any]:
    action = registry()[name]
    ctx = ActionContext(
        step_id=step_id,
        runbook=rb,
        journal=journal,
        state=journal.step(step_id),
        clients=conn.client,
        clock=Clock(1.0),
        artifacts_dir=store.artifacts_dir,
        emit=emit or (lambda _event: None),
        save=lambda: store.save(journal),
        world=EMBEDDED,
        operator="bench",
    )
    journal.step(step_id).status = "running"
    result = action.run(ctx, action.params.model_validate(params))
    summary = action.summary_dict(result, f"steps.{step_id}.summary")  # as the runner does
    journal.step(step_id).status = "done"
    journal.step(step_id).summary = summary
    store.save(journal)
    return summary


def prepared_journal(rb: Runbook, conn: Connection, workdir: Path) -> tuple[JournalStore, Journal]:
    """A journal whose mapping step is done (migrate_entity needs the user -> company map)."""
    store = JournalStore(workdir / "journal.toml")
    journal = new_journal(rb)
    run_action(rb, conn, store, journal, "mapping-document", "company_mapping", {"apply": True})
    return store, journal
