"""Issue 19, item 2: deprecated runtimes are runbook data; what a restore creates on, pure."""

from __future__ import annotations

from datetime import date

import pytest

from engine.runbook import runtimes
from engine.runbook.model import RuntimeLifecycle

TABLE = [RuntimeLifecycle(name="python3.8", deprecated="2024-10-14", block_create="2026-02-28")]


def test_a_runtime_is_blocked_from_its_block_date_on():
    assert not runtimes.blocks_create(TABLE, "python3.8", date(2026, 2, 27))
    assert runtimes.blocks_create(TABLE, "python3.8", date(2026, 2, 28))
    assert runtimes.is_deprecated(TABLE, "python3.8", date(2024, 10, 14))
    assert not runtimes.blocks_create(TABLE, "python3.12", date(2030, 1, 1))
    assert runtimes.blocked_runtimes(TABLE, date(2026, 3, 1)) == {"python3.8"}


def test_a_restore_uses_the_named_replacement_or_refuses():
    late = date(2026, 12, 6)
    assert runtimes.restore_runtime(TABLE, "python3.12", {}, late) == ("python3.12", None)
    assert runtimes.restore_runtime(TABLE, "python3.8", {}, date(2025, 1, 1))[0] == "python3.8"
    runtime, why = runtimes.restore_runtime(TABLE, "python3.8", {"python3.8": "python3.12"}, late)
    assert runtime == "python3.12" and why and "creates blocked from 2026-02-28" in why
    with pytest.raises(runtimes.RuntimeBlocked, match="replacement_runtimes"):
        runtimes.restore_runtime(TABLE, "python3.8", {"nodejs16.x": "nodejs20.x"}, late)


def test_the_bundled_runbook_names_a_replacement_for_each_runtime_it_lists(runbook):
    rollback = runbook.find_rollback("rollback-cleanup")
    step = next(s for s in rollback.steps if s.action == "restore_functions")
    listed = {r.name for r in runbook.lambda_runtimes}
    assert listed and listed <= set(step.bound.replacement_runtimes)
