"""`runbook check`: every problem with file, line and field path; plan discrepancies as warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli.app import main
from engine.plan.loader import RunbookInvalid, default_runbook_path, load_runbook
from tests.support.paths import MINI_RUNBOOK


def variant(tmp_path: Path, old: str, new: str) -> Path:
    text = MINI_RUNBOOK.read_text()
    assert old in text
    path = tmp_path / "variant.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def problems(path: Path) -> list:
    with pytest.raises(RunbookInvalid) as info:
        load_runbook(path)
    return info.value.problems


def test_toml_syntax_error_has_its_line(tmp_path: Path) -> None:
    path = variant(tmp_path, 'title = "Final backups"', 'title = "Final backups')
    [problem] = problems(path)
    assert problem.line == line_of(path, 'title = "Final backups')
    assert problem.path == "(toml)"


def test_unknown_action_names_file_line_and_field(tmp_path: Path) -> None:
    path = variant(tmp_path, 'action = "backup_tables"', 'action = "backup_tablez"')
    [problem] = problems(path)
    assert problem.path == "steps[0].action"
    assert "unknown action 'backup_tablez'" in problem.message
    assert problem.line == line_of(path, "backup_tablez")
    assert problem.render().startswith(f"{path}:{problem.line}: error: steps[0].action")


def test_duplicate_step_ids(tmp_path: Path) -> None:
    path = variant(tmp_path, 'id = "final-backups"', 'id = "handover"')
    found = problems(path)
    assert any(p.message == "duplicate id 'handover'" and p.path == "steps[1].id" for p in found)


def test_gate_and_rollback_naming_missing_phases(tmp_path: Path) -> None:
    path = variant(tmp_path, 'before_phase = "phase2"', 'before_phase = "phase9"')
    path.write_text(path.read_text().replace('phases = ["phase2"]', 'phases = ["phase7"]'))
    messages = {(p.path, p.message) for p in problems(path)}
    assert ("gates[0].before_phase", "unknown phase 'phase9'") in messages
    assert ("rollbacks[0].phases", "unknown phase 'phase7'") in messages


def test_bad_params_and_types(tmp_path: Path) -> None:
    path = variant(tmp_path, 'name_prefix = "final"', "name_prefix = 7")
    found = problems(path)
    assert any(p.path == "steps[2].params" and "name_prefix" in p.message for p in found)
    path = variant(tmp_path, 'slot = "09:00-09:30"', 'slot = "9am"')
    assert any(p.path == "steps[1].slot" for p in problems(path))


def test_cli_check_exit_codes(tmp_path: Path, capsys) -> None:
    assert main(["check", "--runbook", str(MINI_RUNBOOK)]) == 0
    path = variant(tmp_path, 'check = "backups_available"', 'check = "nope"')
    assert main(["check", "--runbook", str(path)]) == 2
    err = capsys.readouterr().err
    assert "gates[0].items[0].check: unknown check 'nope'" in err


def test_bundled_runbook_is_valid_and_reports_plan_discrepancies() -> None:
    loaded = load_runbook(default_runbook_path())
    warnings = [p.message for p in loaded.warnings]
    assert any("needs 24 h" in w and "leaves 16 h" in w for w in warnings)
    assert any("states 7" in w and "marks 6" in w for w in warnings)
    rb = loaded.runbook
    assert len(rb.inventory.tables) == 17
    assert [g.id for g in rb.gates if g.before_phase in ("phase3", "phase4", "phase5")] == [
        "gate-phase3",
        "gate-phase4",
        "gate-phase5",
    ]
    assert {p for r in rb.rollbacks for p in r.phases} == {f"phase{n}" for n in range(1, 6)}
