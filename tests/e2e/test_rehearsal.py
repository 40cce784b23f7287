"""A full rehearsal of the bundled runbook, headless, on the embedded target.

`runbook run --yes` stops at every gate and manual step (exit 3); the test answers each one
the way an operator would with `runbook tick`, `ack` and `decide`, until the run is done.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli.app import main
from engine.plan.loader import default_runbook_path, load_runbook
from engine.rehearsal.embedded import record_path_for, stop_world
from tests.support.approvals import as_flags, manual_items
from tests.support.paths import REPO
from tests.support.rehearsal import TIME_SCALE, status


@pytest.mark.slow
def test_full_rehearsal_end_to_end(tmp_path: Path, capsys) -> None:
    rb = load_runbook(default_runbook_path()).runbook
    journal = tmp_path / "journal.toml"
    common = ["--journal", str(journal)]
    try:
        rehearse(rb, common, capsys)
    finally:
        stop_world(record_path_for(journal))


def console_view(journal: Path) -> tuple[str, str]:
    """The console on the same journal: its status line and detail pane (Pilot, headless)."""
    import asyncio

    from engine.session.workspace import Workspace, WorkspaceOptions
    from tui.app import RunbookApp

    engine = Workspace(WorkspaceOptions(journal=journal)).open_read_only()

    async def look() -> tuple[str, str]:
        app = RunbookApp(engine, greet=False)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            status = str(app.main.query_one("#status").render())
            detail = str(app.main.query_one("#detail-text").render())
        return status, detail

    return asyncio.run(look())


def same_state_everywhere(common: list[str], gate_id: str, capsys) -> None:
    """At a gate: `status --json`, the text `status` and the console say the same."""
    snapshot = status(common, capsys)
    assert snapshot["state"] == "WAITING_GATE"
    assert snapshot["waiting"] == {"kind": "gate", "id": gate_id}
    gate = next(g for g in snapshot["gates"] if g["id"] == gate_id)
    marks = {True: "x", False: " ", None: "?"}
    met = sum(1 for i in gate["items"] if i["ok"])
    assert main(["status", *common]) == 0
    text = capsys.readouterr().out
    assert f"waiting at gate {gate_id}" in text
    assert f"{met}/{len(gate['items'])} items met" in text
    for item in gate["items"]:
        if item["kind"] == "manual" and not item["ok"]:
            assert f"unticked: {item['id']}" in text
        if item["ok"] is False and item["kind"] == "auto":
            assert f"failing:  {item['id']}" in text
    line, detail = console_view(Path(common[1]))
    assert f"WAITING at gate {gate_id}" in line
    for item in gate["items"]:
        assert f"[{marks[item['ok']]}] {item['text']}" in detail, (item, detail)


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
        same_state_everywhere(common, gate.id, capsys)
        for i, item in enumerate(manual_items(gate)):
            tick = ["tick", gate.id, item.id, "--by", "rehearsal", *as_flags(i), *common]
            assert main(tick) == 0
        capsys.readouterr()
        if main(["decide", gate.id, "--go", "--by", "rehearsal", *common]) != 0:
            overridden.append(f"{gate.id}: {capsys.readouterr().err.strip()}")
            assert (
                main(
                    [
                        "decide",
                        gate.id,
                        "--go",
                        "--by",
                        "rehearsal",
                        *common,
                        "--override",
                        "rehearsal",
                    ]
                )
                == 0
            )
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


def readme_headless_example() -> list[list[str]]:
    """The commands of the README's headless example, exactly as written there."""
    import shlex

    readme = (REPO / "README.md").read_text()
    block = readme.split("A full rehearsal, headless:", 1)[1].split("```bash", 1)[1]
    block = block.split("```", 1)[0]
    commands = [shlex.split(line, comments=True) for line in block.strip().splitlines()]
    assert all(c[0] == "runbook" for c in commands), commands
    return [c[1:] for c in commands]


@pytest.mark.slow
def test_readme_headless_example_works_as_written(tmp_path: Path, capsys) -> None:
    """Every command of the README's example succeeds (run stops at a human: exit 3), and
    `status` in between says what the run waits for, with the commands that answer it."""
    commands = readme_headless_example()
    from engine.session.workspace import Workspace, WorkspaceOptions

    journal = Workspace(WorkspaceOptions()).journal_path  # where the README's commands write
    expected = {"run": 3, "status": 0, "tick": 0, "decide": 0, "report": 0}
    outputs: list[str] = []
    try:
        for args in commands:
            capsys.readouterr()
            code = main(args)
            out = capsys.readouterr()
            outputs.append(out.out)
            assert code == expected[args[0]], (args, code, out.out[-800:], out.err[-800:])
    finally:
        stop_world(record_path_for(journal))
    status_text = outputs[[a[0] for a in commands].index("status")]
    assert "state: WAITING_GATE" in status_text
    assert "waiting at gate pre-migration-approval" in status_text
    for item in ("cto", "product-owner", "devops-ready", "qa-ready"):
        assert f"runbook tick pre-migration-approval {item} --by NAME" in status_text
    assert "None" not in status_text and "{'" not in status_text
