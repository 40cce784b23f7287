"""`runbook plan` and `runbook check` for the step-functions backend (issue 23): both backends'
estimates for every migrate step, the crossover they imply, and a transform the state machine
cannot express refused in one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.actions.migrate.entity import plan_migrate
from engine.actions.migrate.estimate import (
    LOCAL_ITEMS_PER_SECOND,
    estimate,
    lines,
    span,
)
from engine.actions.migrate.params import MigrateParams
from engine.actions.migrate.sfn_plan import planned_spec
from engine.plan.loader import RunbookInvalid, load_runbook
from tests.support.paths import REPO

SFN_RUNBOOK = REPO / "tests" / "data" / "step-functions-runbook.toml"
ITEM_BYTES = 320


def sfn(rb, **changes):
    params = {"entity": "expenses", "backend": "step-functions", "bucket": "exports"} | changes
    return MigrateParams(**params)


def test_every_migrate_step_plans_both_backends(runbook) -> None:
    calls = plan_migrate(runbook, MigrateParams(entity="expenses"))
    local, remote = [c for c in calls if c.service == "estimate"]
    assert local.operation == "local" and "1,800 items/s" in local.note and "(chosen)" in local.note
    assert remote.operation == "step-functions" and "export" in remote.note
    assert "$" in remote.note and "(chosen)" not in remote.note
    own = plan_migrate(runbook, sfn(runbook))
    assert [c.operation for c in own][:2] == ["ExportTableToPointInTime", "DescribeExport"]
    assert "(chosen)" in own[-1].note


def test_the_estimates_show_the_crossover(runbook) -> None:
    spec = planned_spec(runbook, sfn(runbook, batch_size=100), runbook.entity("expenses"))
    small = estimate(spec, 100_000, 100_000 * ITEM_BYTES)
    big = estimate(spec, 500_000_000, 500_000_000 * ITEM_BYTES)
    assert small.local_seconds < small.sfn_seconds  # the export's minutes dominate
    assert big.sfn_seconds < big.local_seconds / 3
    assert round(big.local_seconds / 86_400, 1) == pytest.approx(3.2, abs=0.1)  # ~3 days
    assert big.export_cost == pytest.approx(16.0)  # 160 GB at $0.10
    # EXPRESS children in batches: a few dollars; STANDARD: every transition billed
    standard = estimate(
        planned_spec(runbook, sfn(runbook, child_type="STANDARD"), runbook.entity("expenses")),
        500_000_000,
        500_000_000 * ITEM_BYTES,
    )
    assert standard.transitions > 10 * 500_000_000 and standard.sfn_cost > 100_000
    assert big.sfn_cost < 100
    text = lines(big)
    assert (
        "EXPRESS children" in text["step-functions"] and "export $16.00" in text["step-functions"]
    )
    assert "3 d" in text["local"] and LOCAL_ITEMS_PER_SECOND == 1_800
    assert span(59) == "59 s" and span(3_700) == "1 h 1 min" and span(90_000) == "1 d 1 h"


def test_check_refuses_what_jsonpath_cannot_express(tmp_path: Path) -> None:
    text = SFN_RUNBOOK.read_text()
    load_runbook(SFN_RUNBOOK)  # valid as shipped
    odd = tmp_path / "odd.toml"
    odd.write_text(text.replace('id_attr = "expenseId"', 'id_attr = "expense-id"'))
    with pytest.raises(RunbookInvalid) as info:
        load_runbook(odd)
    problems = [p.render() for p in info.value.problems if p.severity == "error"]
    assert any(
        'backend "step-functions" cannot run entity expenses' in p and "expense-id" in p
        for p in problems
    ), problems
    local = tmp_path / "local.toml"
    local.write_text(
        re.sub(
            r"params = \{ entity = \"expenses\", backend = .*\}",
            'params = { entity = "expenses" }',
            text.replace('id_attr = "expenseId"', 'id_attr = "expense-id"'),
        )
    )
    load_runbook(local)  # the local backend copies any attribute name
