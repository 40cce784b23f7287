"""The step-functions backend on the data tests' whole legacy dataset (issue 23): equal to the
local backend item for item and validated the same. Across a dead console and a stop: a console
that dies mid-execution changes nothing in AWS and the next run attaches to the same execution
(exactly one was started); a stop stops it, and the next run redrives it (moto: starts its next
attempt) and the items end equal to the local backend's. In-process moto; e2e for its time
(~25 s each in moto's interpreter)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from engine.aws.target import Connection
from engine.core.clock import Interrupted
from engine.core.events import Progress
from tests.support.actions import run
from tests.support.legacy_data import EXPENSES
from tests.support.step_functions import (
    SFN_PARAMS,
    closed,
    executions,
    ledgers,
    local_backend,
    moto_world,
    outcome,
    prepare,
    target,
    validation,
)


def test_step_functions_equals_local_on_the_whole_dataset(make_ctx, runbook):
    local = local_backend(make_ctx, runbook)  # in a world of its own, first
    with moto_world() as conn:
        journal, expected = prepare(conn, make_ctx, runbook)
        mctx, _ = make_ctx("migrate-expenses", conn, journal=journal)
        summary = run(mctx, "migrate_entity", SFN_PARAMS)
        assert outcome(summary) == local["outcome"]
        assert summary["quarantined"] == expected["quarantined"] == 4
        assert summary["collisions"] == expected["collisions"] == 3
        assert summary["skipped_newer"] == expected["skipped_newer"]
        assert target(conn) == local["target"]
        assert ledgers(mctx) == local["ledgers"]
        vctx, _ = make_ctx("validate-migration", conn, journal=journal)
        v = run(vctx, "validate_migration", {"entities": ["expenses"]})
        assert v["records_missing"] == 0 and validation(v) == local["validation"]


class Killed(BaseException):
    """The console dies here, as under a SIGKILL: nothing runs on the way out."""


@pytest.fixture
def sfn_aws() -> Iterator[Connection]:
    with moto_world() as conn:
        yield conn


def test_a_killed_console_attaches_to_the_one_execution(sfn_aws, make_ctx, runbook):
    journal, expected = prepare(sfn_aws, make_ctx, runbook)
    mctx, _ = make_ctx("migrate-expenses", sfn_aws, journal=journal)

    def die_once_it_runs(event: Any) -> None:
        if isinstance(event, Progress) and event.table == EXPENSES and event.done > 0:
            raise Killed()

    mctx.emit = die_once_it_runs
    with pytest.raises(Killed):
        run(mctx, "migrate_entity", SFN_PARAMS)
    arn = journal.step("migrate-expenses").cursors["sfn"]["execution_arn"]
    status = sfn_aws.client("stepfunctions").describe_execution(executionArn=arn)["status"]
    assert status in ("RUNNING", "SUCCEEDED")  # nothing was stopped on the way down

    rctx, revents = make_ctx("migrate-expenses", sfn_aws, journal=journal)
    summary = run(rctx, "migrate_entity", SFN_PARAMS)
    assert summary["execution_arn"] == arn and summary["attempts"] == 1
    assert any("attached to execution" in getattr(e, "message", "") for e in revents)
    assert len(executions(sfn_aws, arn)) == 1  # exactly one was started
    assert summary["migrated"] == expected["migrated"]
    assert summary["skipped_newer"] == expected["skipped_newer"]


def test_a_stop_stops_the_execution_and_a_resume_finishes_it(make_ctx, runbook):
    local = local_backend(make_ctx, runbook)  # in a world of its own, first
    with moto_world() as sfn_aws:
        stop_then_resume(sfn_aws, local, make_ctx, runbook)


def stop_then_resume(
    sfn_aws: Connection, local: dict[str, Any], make_ctx: Any, runbook: Any
) -> None:
    journal, _ = prepare(sfn_aws, make_ctx, runbook)
    mctx, _ = make_ctx("migrate-expenses", sfn_aws, journal=journal)

    def stop_once_it_runs(event: Any) -> None:
        if isinstance(event, Progress) and event.table == EXPENSES and event.done > 0:
            mctx.clock.stop.set()

    mctx.emit = stop_once_it_runs
    with pytest.raises(Interrupted):
        run(mctx, "migrate_entity", SFN_PARAMS)
    arn = journal.step("migrate-expenses").cursors["sfn"]["execution_arn"]
    assert closed(sfn_aws, arn) == "ABORTED"
    assert journal.step("migrate-expenses").cursors["sfn"]["stopped"] is True

    rctx, revents = make_ctx("migrate-expenses", sfn_aws, journal=journal)
    summary = run(rctx, "migrate_entity", SFN_PARAMS)
    # moto cannot redrive (RedriveExecution is not implemented): its next attempt, logged
    assert summary["redrives"] == 0 and summary["attempts"] == 2
    assert any("attempt 2 starts" in getattr(e, "message", "") for e in revents)
    assert outcome(summary) == local["outcome"]
    assert target(sfn_aws) == local["target"]
    assert ledgers(rctx) == local["ledgers"]
