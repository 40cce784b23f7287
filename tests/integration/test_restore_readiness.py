"""Issue 19, item 2: Day 1 reports each deprecated function's runtime with its lifecycle dates
and the mappings that read a legacy table's stream; the gate before Phase 5 shows the functions
that could not come back as they were."""

from __future__ import annotations

import json

from engine.rehearsal.legacy_shape import legacy_function_of
from tests.support.actions import check, run

PARAMS = {"inventory_step": "inventory", "rollback": "rollback-cleanup"}


def test_day1_reports_runtimes_roles_and_legacy_stream_readers(world, make_ctx, runbook):
    fn, table = legacy_function_of(runbook)
    ctx, _ = make_ctx("inventory", world)
    summary = run(ctx, "inventory_diff", {})
    [runtime_line] = summary["deprecated_runtimes"]
    assert runtime_line.startswith(f"{fn}: python3.8: deprecated 2024-10-14, creates blocked")
    assert "cannot create it on this runtime" in runtime_line
    [mapping_line] = summary["legacy_stream_mappings"]
    assert fn in mapping_line and table in mapping_line
    artifact = json.loads(ctx.artifact(summary["artifact"]).read_text())
    entry = artifact["deprecated_functions"][fn]
    assert entry["role"].endswith(":role/runbook-console-lambda-role")
    assert entry["vpc"] is True and entry["layers"] and entry["blocks_create"] is True
    others = [f for f in runbook.inventory.select_functions("@deprecated") if f != fn]
    assert all(artifact["deprecated_functions"][f]["runtime"] == "python3.12" for f in others)
    assert artifact["legacy_stream_mappings"][0]["table"] == table

    # the gate before Phase 5: the runbook names a replacement, so it passes and says what
    # would change; a rollback naming none fails and names the function
    gate_ctx, _ = make_ctx("gate-phase5:restorable", world, journal=ctx.journal)
    result = check(gate_ctx, "restorable_as_they_were", PARAMS)
    assert result.ok, result.detail
    assert result.data["runtime_changes"] == [f"{fn}: python3.8 -> python3.12"]
    assert len(result.data["stream_mappings"]) == 1 and "legacy stream" in result.detail
    refused = check(gate_ctx, "restorable_as_they_were", {**PARAMS, "rollback": "rollback-data"})
    assert not refused.ok and refused.data["blocked"] == [f"{fn}: python3.8"]
    assert "no replacement" in refused.detail


def test_the_gate_item_fails_without_a_day1_inventory(world, make_ctx, runbook):
    ctx, _ = make_ctx("gate-phase5:restorable", world)
    result = check(ctx, "restorable_as_they_were", PARAMS)
    assert not result.ok and "no inventory artifact" in result.detail
    gate = runbook.gate("gate-phase5")
    assert any(i.check == "restorable_as_they_were" for i in gate.items)


def test_an_inventory_from_before_the_report_is_not_taken_for_a_clean_one(world, make_ctx):
    ctx, _ = make_ctx("inventory", world)
    summary = run(ctx, "inventory_diff", {})
    path = ctx.artifact(summary["artifact"])
    older = json.loads(path.read_text())
    del older["deprecated_functions"], older["legacy_stream_mappings"]
    path.write_text(json.dumps(older))
    gate_ctx, _ = make_ctx("gate-phase5:restorable", world, journal=ctx.journal)
    result = check(gate_ctx, "restorable_as_they_were", PARAMS)
    assert not result.ok and "predates" in result.detail
