"""The report agrees with the run: the worst error rate seen, the alerts that fired (a table),
and the deleted resources whose archive is incomplete (also said before a deletion)."""

from __future__ import annotations

from pathlib import Path

from engine.run.report import render_report
from tests.support import tui_states as states


def test_error_rate_criterion_counts_the_alert_that_fired_and_alerts_are_a_table(
    tmp_path: Path,
) -> None:
    engine = states.alert(tmp_path)  # read-shift-10 failed on a 5.2% alert
    alert = engine.journal.alerts[0]
    alert["measured"], alert["trigger"] = 1.13, "error-rate"
    # the rollback that followed cleared the step: only the alert remembers the window
    engine.journal.steps["read-shift-10"] = engine.journal.steps["read-shift-10"].model_copy(
        update={"status": "rolled_back", "error": None}
    )
    engine.journal.steps["capture-baseline"].summary = {"max_error_rate_percent": 0.004}
    report = render_report(engine, None)
    row = next(line for line in report.splitlines() if line.startswith("| Error rate < 0.01%"))
    assert "| 1.13 (worst seen during the run; 1 alert(s) fired, see Alerts) |" in row
    assert row.endswith("| NOT met |")
    assert "| at | trigger | step | measured | threshold | proposed rollback | message |" in report
    assert (
        "| 2024-12-02 14:21:00Z | error-rate | read-shift-10 | 1.13 | 1 | rollback-reads |"
        in report
    )
    assert "{'trigger'" not in report


def test_incomplete_archives_are_listed_in_the_report_and_the_snapshot(tmp_path: Path) -> None:
    engine = states.fresh(tmp_path)
    states.full_until(engine.runbook, engine.journal, "delete-deprecated-tables")
    engine.journal.steps["delete-deprecated-functions"].summary = {
        "deleted": ["fn-a", "fn-b"],
        "code_missing": ["fn-b"],
    }
    assert engine.snapshot().archive_gaps == (
        "fn-b: code package not archived (delete-deprecated-functions)",
    )
    report = render_report(engine, None)
    assert "## Incomplete archives" in report
    assert "- fn-b: code package not archived (delete-deprecated-functions)" in report


async def test_the_confirmation_before_a_deletion_names_incomplete_archives(
    tmp_path: Path,
) -> None:
    from tui.app import RunbookApp
    from tui.screens.prompts import TypedConfirm

    engine = states.fresh(tmp_path)
    states.full_until(engine.runbook, engine.journal, "delete-deprecated-tables")
    engine.journal.steps["delete-deprecated-functions"].summary = {"code_missing": ["fn-b"]}
    app = RunbookApp(engine, greet=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        await pilot.pause()
        confirm = app.screen
        assert isinstance(confirm, TypedConfirm)
        shown = "\n".join(strip.text for strip in confirm._compositor.render_strips())
        flat = " ".join(shown.split())
        assert "Archive incomplete (1): fn-b: code package not archived" in flat, shown


def test_the_report_shows_who_ticked_each_manual_item_and_when(tmp_path: Path) -> None:
    """Issue 20, item 3: the audit record shows the ticks `status` counts, not empty boxes."""
    engine = states.fresh(tmp_path)
    engine.tick("pre-migration-approval", "cto", by="alice", note="signed on paper")
    report = render_report(engine, None)
    gate = report.split("**Pre-Migration Approval**", 1)[1].split("- **", 1)[0]
    cto = next(line for line in gate.splitlines() if "CTO Approval" in line)
    assert cto.startswith("  - [x] CTO Approval: ticked by alice at 20"), cto
    assert "[ ] Product Owner Approval: not ticked" in gate


def test_the_validation_is_readable_markdown_not_a_dict_dump(tmp_path: Path) -> None:
    """Issue 20, item 20."""
    engine = states.fresh(tmp_path)
    states.full_until(engine.runbook, engine.journal, "capture-baseline")
    engine.journal.steps["validate-migration"].summary = {
        "ok": True,
        "records_missing": 0,
        "dataIntegrity": {"checksum": True, "relationships": True},
        "recordCounts": {"expenses": {"source": 7, "target": 7, "match": True}},
    }
    report = render_report(engine, None)
    assert "{'" not in report and "True" not in report
    assert "- dataIntegrity:\n  - checksum: yes\n  - relationships: yes" in report
    assert "- recordCounts:\n  - expenses:\n    - match: yes\n    - source: 7" in report
