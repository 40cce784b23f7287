"""migrate_entity with backend = "step-functions" against moto executing the state machine
(issue 23), on a small world with one item of each outcome (tests/support/step_functions.py):
the target equals the local backend's item for item (newer application writes kept, the same
collisions and quarantine), validate-migration finds the same afterwards, and the journal holds
ARNs and counts only. The data tests' whole dataset, a kill and a stop mid-execution:
tests/e2e/test_step_functions_resume.py (moto's interpreter takes about 6 items a second)."""

from __future__ import annotations

from typing import Any

from engine.core.events import Progress
from tests.support.actions import run
from tests.support.legacy_data import EXPENSES
from tests.support.step_functions import (
    SFN_PARAMS,
    executions,
    ledgers,
    local_backend,
    moto_world,
    outcome,
    prepare,
    target,
    validation,
)


def test_step_functions_equals_local_and_validates(make_ctx, runbook):
    local = local_backend(make_ctx, runbook, small=True)  # in a world of its own, first
    with moto_world() as conn:
        journal, expected = prepare(conn, make_ctx, runbook, small=True)
        mctx, events = make_ctx("migrate-expenses", conn, journal=journal)
        summary = run(mctx, "migrate_entity", SFN_PARAMS)

        assert summary["backend"] == "step-functions"
        assert outcome(summary) == local["outcome"]
        assert {k: summary[k] for k in ("migrated", "skipped_newer")} == {
            k: expected[k] for k in ("migrated", "skipped_newer")
        }
        assert (summary["collisions"], summary["quarantined"]) == (3, 2)
        assert target(conn) == local["target"]  # newer application writes kept
        assert ledgers(mctx) == local["ledgers"]  # the same items set aside, same reasons
        bars = [e for e in events if isinstance(e, Progress) and e.table == EXPENSES]
        assert bars and bars[-1].done == bars[-1].total == expected["source"]

        cursors: dict[str, Any] = journal.step("migrate-expenses").cursors["sfn"]
        assert cursors["execution_arn"] == summary["execution_arn"]
        assert cursors["export_arn"] == summary["export_arn"]
        assert cursors["counts"]["succeeded"] == expected["source"]
        assert set(cursors) <= {  # ARNs and counts, never per-item state
            "export_arn",
            "export_manifest",
            "reader_items",
            "state_machine_arn",
            "execution_arn",
            "attempt",
            "redrives",
            "stopped",
            "map_run_arn",
            "counts",
        }
        assert len(executions(conn, summary["execution_arn"])) == 1

        # run again: the step attaches to the same (closed) execution, starts none
        again, _ = make_ctx("migrate-expenses", conn, journal=journal)
        second = run(again, "migrate_entity", SFN_PARAMS)
        assert second["execution_arn"] == summary["execution_arn"]
        assert len(executions(conn, summary["execution_arn"])) == 1
        assert outcome(second) == outcome(summary)

        vctx, _ = make_ctx("validate-migration", conn, journal=journal)
        v = run(vctx, "validate_migration", {"entities": ["expenses"]})
        assert v["records_missing"] == 0 and v["recordCounts"]["expenses"]["match"]
        assert validation(v) == local["validation"]
