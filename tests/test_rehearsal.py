"""A full rehearsal of the bundled runbook, headless, on the embedded target.

`runbook run --yes` stops at every gate and manual step (exit 3); the test answers each one
the way an operator would with `runbook tick`, `ack` and `decide`, until the run is done.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import main
from engine.embedded import record_path_for, stop_world
from engine.loader import default_runbook_path, load_runbook

TIME_SCALE = "1000000"  # a 24 h soak takes 0.09 s


def status(common: list[str], capsys) -> dict:
    capsys.readouterr()
    assert main(["status", "--json", *common]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_full_rehearsal_end_to_end(tmp_path: Path, capsys) -> None:
    rb = load_runbook(default_runbook_path()).runbook
    journal = tmp_path / "journal.toml"
    common = ["--journal", str(journal)]
    try:
        rehearse(rb, common, capsys)
    finally:
        stop_world(record_path_for(journal))


def rehearse(rb, common: list[str], capsys) -> None:
    decided: list[str] = []
    overridden: list[str] = []
    for _ in range(60):
        code = main(["run", *common, "--yes", "--time-scale", TIME_SCALE])
        if code == 0:
            break
        assert code == 3, capsys.readouterr()
        waiting = status(common, capsys)["waiting"]
        if waiting["kind"] == "step":
            assert main(["ack", waiting["id"], "--by", "rehearsal", *common]) == 0
            continue
        gate = rb.gate(waiting["id"])
        for item in gate.items:
            if item.kind == "manual":
                assert main(["tick", gate.id, item.id, "--by", "rehearsal", *common]) == 0
        capsys.readouterr()
        if main(["decide", gate.id, "--go", "--by", "rehearsal", *common]) != 0:
            overridden.append(f"{gate.id}: {capsys.readouterr().err.strip()}")
            assert main(["decide", gate.id, "--go", "--by", "rehearsal", *common,
                         "--override", "rehearsal"]) == 0
        decided.append(gate.id)
    else:
        pytest.fail("the rehearsal did not finish")
    final = status(common, capsys)
    assert {s["status"] for s in final["steps"]} == {"done"}
    validation = next(s for s in final["steps"] if s["id"] == "validate-migration")["summary"]
    assert validation["performance"]["invocations"] > 0  # simulated traffic while flags are on
    assert validation["performance"]["avgResponseTime"] > 0
    assert decided == [g.id for g in rb.gates]
    assert overridden == [], f"gates needed an override: {overridden}"
    capsys.readouterr()
    assert main(["report", *common]) == 0
    report = capsys.readouterr().out
    assert "| Zero data loss - All records migrated successfully | 0 | 0 | met |" in report
    functions = "| 26 Lambda functions removed (from 30 to 4 for core entities) | 26 | 26 | met |"
    assert functions in report
