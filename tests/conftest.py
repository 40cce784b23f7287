"""Shared fixtures: the bundled runbook, a seeded moto world (mock_aws), and action contexts."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from engine.aws.target import DUMMY_CREDENTIALS, Connection
from engine.core.clock import Clock
from engine.core.context import ActionContext
from engine.plan.loader import default_runbook_path
from engine.rehearsal.moto_fidelity import (
    aws_item_size_limit,
    aws_lambda_rules,
    aws_scan_pages,
    aws_transactions,
)
from engine.rehearsal.seed import seed_world
from engine.rehearsal.world import EMBEDDED
from engine.runbook.model import Runbook
from engine.state.journal import Journal, JournalStore, RunMeta, Target

if TYPE_CHECKING:
    from engine.run.engine import Engine

# every in-process moto of the suite answers as the embedded server does: items refused where
# DynamoDB refuses them, TransactWriteItems and Scan at AWS's cost
aws_item_size_limit()
aws_transactions()
aws_scan_pages()
aws_lambda_rules()

MIGRATION_TS = "2024-12-01T10:00:00Z"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Snapshots break under NO_COLOR/TEXTUAL_THEME; AWS must never be reached from tests."""
    for var in ("NO_COLOR", "TEXTUAL_THEME", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(scope="session")
def runbook() -> Runbook:
    with default_runbook_path().open("rb") as fh:
        return Runbook.model_validate(tomllib.load(fh))


@pytest.fixture
def aws() -> Iterator[Connection]:
    """An empty in-process moto world."""
    with mock_aws():
        session = boto3.Session(region_name="us-east-1", **DUMMY_CREDENTIALS)
        yield Connection(session, "us-east-1")


@pytest.fixture
def world(aws: Connection, runbook: Runbook) -> Connection:
    """The plan's inventory, seeded."""
    seed_world(aws, runbook, "world-test")
    return aws


def new_journal(runbook: Runbook, migration_ts: str = MIGRATION_TS) -> Journal:
    run = RunMeta(
        runbook_id=runbook.runbook.id,
        runbook_sha256="0" * 64,
        operator="tester",
        target=Target(kind="embedded", identity="world-test", region="us-east-1"),
        started_at=migration_ts,
        migration_ts=migration_ts,
    )
    return Journal(run=run)


@pytest.fixture
def make_ctx(tmp_path: Path, runbook: Runbook) -> Callable[..., tuple[ActionContext, list[Any]]]:
    """Build an ActionContext for one step against a connection; returns (ctx, events)."""

    def build(
        step_id: str,
        conn: Connection,
        journal: Journal | None = None,
        rb: Runbook | None = None,
        time_scale: float = 1000.0,
    ) -> tuple[ActionContext, list[Any]]:
        journal = journal or new_journal(rb or runbook)
        store = JournalStore(tmp_path / "journal.toml")
        events: list[Any] = []
        ctx = ActionContext(
            step_id=step_id,
            runbook=rb or runbook,
            journal=journal,
            state=journal.step(step_id),
            clients=conn.client,
            clock=Clock(time_scale),
            artifacts_dir=store.artifacts_dir,
            emit=events.append,
            save=lambda: store.save(journal),
            world=EMBEDDED,
            operator="tester",
        )
        return ctx, events

    return build


MINI_RUNBOOK = Path(__file__).parent / "data" / "mini-runbook.toml"


@contextmanager
def fresh_moto_server() -> Iterator[str]:
    """A moto server on loopback (its own thread) with an empty world; yields its URL."""
    import logging
    import socket
    import urllib.request

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    # moto's backends are per process: start every test from an empty world
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"))
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def moto_endpoint(runbook: Runbook) -> Iterator[str]:
    """A moto server on loopback (its own thread), for CLI runs with --endpoint-url."""
    with fresh_moto_server() as url:
        yield url


def seed_endpoint(endpoint: str, rb: Runbook) -> Connection:
    from engine.aws.target import local_connection

    conn = local_connection(endpoint, "us-east-1")
    seed_world(conn, rb, "world-endpoint")
    return conn


def seeded_engine(
    aws: Connection, journal_path: Path, runbook_path: Path, world_id: str, time_scale: float
) -> Engine:
    """An Engine on a freshly seeded moto world, driven by alice, as the console would open it."""
    from engine.aws.target import TargetSpec, identify
    from engine.plan.loader import load_runbook
    from engine.run.engine import Engine, EngineOptions
    from engine.session import journals

    loaded = load_runbook(runbook_path)
    seed_world(aws, loaded.runbook, world_id)
    journal = journals.new_journal(loaded, identify(TargetSpec(), aws, world_id), "alice")
    return Engine(
        loaded.runbook,
        journal,
        JournalStore(journal_path),
        aws.client,
        EngineOptions(operator="alice", time_scale=time_scale, world=EMBEDDED),
    )
