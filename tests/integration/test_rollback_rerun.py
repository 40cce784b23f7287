"""Rollbacks on the bundled runbook, then the phase again: the re-run really re-applies, a
second rollback really restores, and removed data is migrated again (moto, through the engine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.aws import dynamo
from engine.aws.target import Connection
from engine.plan.loader import default_runbook_path
from engine.run.engine import Engine
from tests.support.operator import OK, advance, flag
from tests.support.world import seeded_engine


def migrated_items(aws: Connection, table: str, ts: str) -> int:
    ddb = aws.client("dynamodb")
    return sum(
        1 for page, _ in dynamo.scan_pages(ddb, table) for i in page if i.get("updatedAt") == ts
    )


@pytest.fixture
def engine(aws: Connection, tmp_path: Path) -> Engine:
    return seeded_engine(
        aws, tmp_path / "j.toml", default_runbook_path(), "world-rb", time_scale=1_000_000
    )


@pytest.mark.slow
def test_phase_again_after_its_rollback(engine: Engine, aws: Connection) -> None:
    rb = engine.runbook
    fn = rb.flags.functions[0]
    ts = engine.journal.run.migration_ts
    expenses = rb.entity("expenses")
    advance(engine, ("gate", "gate-phase4"))
    assert flag(aws, fn, "DUAL_WRITE_ENABLED") == "true"
    migrated = migrated_items(aws, expenses.target, ts)
    assert migrated > 0

    # dual-write rolled back, then enabled again, then rolled back again
    for attempt in (2, 3):
        assert engine.rollback("phase3", by="alice", confirm=OK).status == "done"
        assert flag(aws, fn, "DUAL_WRITE_ENABLED") == "false"
        state = engine.journal.steps["enable-dual-write"]
        assert state.status == "rolled_back" and not state.cursors and not state.summary
        assert engine.journal.gates["gate-phase3"].decision is None
        advance(engine, ("step", "monitor-dual-write"))
        assert flag(aws, fn, "DUAL_WRITE_ENABLED") == "true"  # really re-applied
        state = engine.journal.steps["enable-dual-write"]
        assert state.attempts == attempt and state.summary["changed"] > 0
    advance(engine, ("gate", "gate-phase4"))

    # the data rollback removes what the run wrote; the migration steps run again
    assert engine.rollback("phase2", by="alice", confirm=OK).status == "done"
    assert migrated_items(aws, expenses.target, ts) == 0
    for step_id in ("migrate-expenses", "validate-migration", "create-orphan-companies"):
        assert engine.journal.steps[step_id].status == "rolled_back", step_id
    assert engine.journal.gates["gate-phase3"].decision is None  # after the first undone step
    assert engine.journal.gates["pre-migration-approval"].decision is None
    advance(engine, ("gate", "gate-phase4"))
    assert migrated_items(aws, expenses.target, ts) == migrated
    assert engine.journal.steps["validate-migration"].summary["ok"] is True
    assert engine.journal.steps["migrate-expenses"].summary["migrated"] == migrated
