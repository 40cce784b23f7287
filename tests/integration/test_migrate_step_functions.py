"""migrate_entity with backend = "step-functions" against moto executing the state machine
(issue 23), on a small world with one item of each outcome (tests/support/step_functions.py):
the target equals the local backend's item for item (newer application writes kept, the same
collisions and quarantine), validate-migration finds the same afterwards, and the journal holds
ARNs and counts only. The data tests' whole dataset, a kill and a stop mid-execution:
tests/e2e/test_step_functions_resume.py (moto's interpreter takes about 6 items a second)."""

from __future__ import annotations

import json
import re
import warnings
from typing import Any

from engine.aws import copy_policy, iam_policy
from engine.core.events import Progress
from engine.core.world import REAL_ACCOUNT
from engine.plan.loader import load_runbook
from engine.rehearsal.seed import seed_world
from tests.support.actions import run
from tests.support.legacy_data import EXPENSES
from tests.support.paths import REPO
from tests.support.step_functions import (
    SFN_PARAMS,
    CallRecorder,
    executions,
    ledgers,
    local_backend,
    moto_world,
    outcome,
    prepare,
    target,
    validation,
)
from tests.support.world import new_journal

SFN_RUNBOOK = REPO / "tests" / "data" / "step-functions-runbook.toml"
ACCOUNT = "123456789012"
# moto 5.2.6 names an export table/<the table's whole ARN>/import/<id>; AWS table/<name>/export/<id>
MOTO_EXPORT_ARN = re.compile(r"table/arn:aws:dynamodb:[^:]*:[0-9]*:table/([^/]+)/import/")


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
            "file_counts",
        }
        files = cursors["file_counts"]  # the outer map: one item per data file
        assert files["total"] == files["succeeded"] >= 1 and files["failed"] == 0
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


def test_the_iam_policy_allows_every_call_of_the_copy(make_ctx):
    """`runbook iam-policy` for the step-functions rehearsal runbook grants every call the copy
    makes on a real account's path (its export, S3 objects, role, state machine, execution,
    map runs and their children, the bridge function and its role), and
    parliament finds nothing in the copy's grants (the runbook has no functions: the lambda
    grants of an empty list are not the copy's)."""
    rb = load_runbook(SFN_RUNBOOK).runbook
    with moto_world() as conn:
        seed_world(conn, rb, "world-sfn")
        journal = new_journal(rb)
        for step_id in ("backup-tables", "analyze-data-volume", "create-orphan-companies"):
            ctx, _ = make_ctx(step_id, conn, journal=journal, rb=rb)
            run(ctx, rb.step(step_id).action, dict(rb.step(step_id).params))
        recorder = CallRecorder(conn)
        mctx, _ = make_ctx("migrate-expenses", conn, journal=journal, rb=rb)
        mctx.world = REAL_ACCOUNT  # the policy is for a real account: the bridge's calls too
        params = {**rb.step("migrate-expenses").params, "poll_seconds": 0.2}
        summary = run(mctx, "migrate_entity", params)
        assert summary["migrated"] > 0
    policy = iam_policy.build_policy(rb, ACCOUNT)
    operations = {(service, op) for service, op, _ in recorder.calls}
    assert {("dynamodb", "ExportTableToPointInTime"), ("stepfunctions", "StartExecution"),
            ("stepfunctions", "DescribeMapRun"), ("iam", "CreateRole"),
            ("lambda", "CreateFunction")} <= operations  # fmt: skip
    missing = set()
    for service, op, call in recorder.calls:
        action = iam_policy.iam_action(service, op)
        for arn in iam_policy.resources_for_call(service, op, call, "us-east-1", ACCOUNT):
            arn = MOTO_EXPORT_ARN.sub(r"table/\1/export/", arn)  # as AWS names an export
            if not iam_policy.allows(policy, action, arn):
                missing.add(f"{service}.{op} -> {action} on {arn}")
    assert sorted(missing) == []
    with warnings.catch_warnings():  # parliament imports pkg_resources, deprecated
        warnings.simplefilter("ignore")
        from parliament import analyze_policy_string
    copy = copy_policy.copy_grants(rb, ACCOUNT, "us-east-1")
    assert {g.sid for g in copy} >= {"ExportTheSourcesOfStepFunctionsCopies", "TheCopiesMapRuns"}
    statements = {"Version": "2012-10-17", "Statement": [g.statement() for g in copy]}
    findings = analyze_policy_string(json.dumps(statements)).findings
    assert [(f.issue, f.detail) for f in findings] == []
