"""A final validation that finds problems holds the run before the deletions until a human
accepts them (or a retry passes): the run waits, exit 3 style, never deletes silently."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.aws import dynamo
from engine.aws.target import Connection
from engine.core.outcome import CommandRefused
from engine.core.views import NodeRef
from engine.plan.loader import default_runbook_path
from engine.run.engine import Engine
from engine.run.report import render_report
from tests.support.operator import OK, advance
from tests.support.world import seeded_engine


@pytest.mark.slow
def test_failed_final_validation_waits_for_acceptance(aws: Connection, tmp_path: Path) -> None:
    engine: Engine = seeded_engine(
        aws, tmp_path / "j.toml", default_runbook_path(), "world-acc", time_scale=1_000_000
    )
    advance(engine, ("step", "final-validation"))
    expenses = engine.runbook.entity("expenses")
    ddb = aws.client("dynamodb")
    page, _ = next(dynamo.scan_pages(ddb, expenses.target, page_size=1))
    key = {k: page[0][k] for k in ("companyId", expenses.id_attr)}
    ddb.delete_item(TableName=expenses.target, Key=dynamo.to_dynamo(key))  # one record lost

    with pytest.raises(CommandRefused):
        engine.ack("remove-dual-write", by="alice")  # nothing to accept there
    for attempt in (1, 2):  # a retry validates again, and still waits
        outcome = engine.run(confirm=OK)
        assert outcome.status == "waiting", outcome
        assert outcome.waiting == NodeRef.step("final-validation")
        state = engine.journal.steps["final-validation"]
        assert state.status == "failed" and state.attempts == attempt
        assert "missing=1" in (state.error or "")
        assert engine.waiting() == NodeRef.step("final-validation")
        assert engine.journal.step("delete-deprecated-functions").status == "pending"

    engine.ack("final-validation", by="alice", note="the lost item is re-entered by support")
    outcome = engine.run(until="remove-dual-write", confirm=OK)
    assert outcome.status == "done", outcome
    state = engine.journal.steps["final-validation"]
    assert state.status == "done" and state.summary["accepted_by"] == "alice"
    assert state.summary["records_missing"] == 1
    assert engine.journal.steps["remove-dual-write"].status == "done"
    assert any("acknowledged final-validation" in a.what for a in engine.journal.audit)
    report = render_report(engine, aws.client)
    assert "| Zero data loss - All records migrated successfully | 0 | 1 | NOT met |" in report
    assert "Records not migrated: missing 1, collisions 0, quarantined 0, unmapped 0" in report
