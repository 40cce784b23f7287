"""Shared fixtures: the bundled runbook, a seeded moto world (mock_aws), and action contexts;
each test gets the marker of its tier from its folder (unit, integration, e2e, tui)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from engine.aws.target import DUMMY_CREDENTIALS, Connection
from engine.core.clock import Clock
from engine.core.context import ActionContext
from engine.plan.loader import default_runbook_path, load_runbook
from engine.rehearsal.moto_fidelity import (
    aws_blocked_runtimes,
    aws_item_size_limit,
    aws_lambda_rules,
    aws_scan_pages,
    aws_transactions,
)
from engine.rehearsal.moto_fidelity_sfn import (
    aws_export_layout,
    aws_map_run_children,
    aws_map_runs,
    aws_sdk_bodies,
)
from engine.rehearsal.moto_lambda import python_lambdas_in_process
from engine.rehearsal.seed import seed_world
from engine.rehearsal.world import EMBEDDED
from engine.runbook.model import Runbook
from engine.runbook.runtimes import blocked_runtimes
from engine.state.journal import Journal, JournalStore
from tests.support.world import fresh_moto_server, new_journal

# every in-process moto of the suite answers as the embedded server does: items refused where
# DynamoDB refuses them, TransactWriteItems and Scan at AWS's cost
aws_item_size_limit()
aws_transactions()
aws_scan_pages()
aws_export_layout()
aws_lambda_rules()
aws_sdk_bodies()
aws_map_runs()
aws_map_run_children()
python_lambdas_in_process()  # the bridge function's handler, run in this process
# and refuses CreateFunction on a runtime AWS blocks creates on today (the runbook's table)
aws_blocked_runtimes(
    blocked_runtimes(
        load_runbook(default_runbook_path()).runbook.lambda_runtimes, datetime.now(UTC).date()
    )
)

TIERS = ("unit", "integration", "e2e", "tui")  # the folders under tests/, one marker each
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its tier, from the folder it sits in (`pytest -m "not e2e"`)."""
    for item in items:
        try:
            folder = Path(item.path).resolve().relative_to(HERE).parts[0]
        except ValueError:
            continue
        if folder in TIERS:
            item.add_marker(getattr(pytest.mark, folder))


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
    return load_runbook(default_runbook_path()).runbook  # params bound, as the engine gets it


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


@pytest.fixture
def moto_endpoint(runbook: Runbook) -> Iterator[str]:
    """A moto server on loopback (its own thread), for CLI runs with --endpoint-url."""
    with fresh_moto_server() as url:
        yield url
