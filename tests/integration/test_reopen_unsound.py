"""A migration an earlier version marked done on a short scan (scanned 0 of 7, an answer lost on
the way) is reopened by the next `run`, journaled and logged; sound steps stay done
(issue 20, item 1)."""

from __future__ import annotations

from pathlib import Path

from engine.actions.migrate.entity import unsound_migration
from engine.plan.loader import default_runbook_path
from tests.support.world import seeded_engine

SHORT = {"entity": "expenses", "source_total": 7, "scanned": 0, "migrated": 0}
SOUND = {"entity": "projects", "source_total": 1, "scanned": 1, "migrated": 1}


def test_a_short_scan_marked_done_runs_again(aws, tmp_path: Path) -> None:
    engine = seeded_engine(aws, tmp_path / "j.toml", default_runbook_path(), "world-t", 1000.0)
    for step_id, summary in (("migrate-expenses", SHORT), ("migrate-projects", SOUND)):
        state = engine.journal.step(step_id)
        state.status, state.summary = "done", dict(summary)
        state.cursors = {"total_segments": 4, "segments": {"0": {"done": True}}}
    engine.run(until="inventory")
    reopened = engine.journal.step("migrate-expenses")
    assert reopened.status == "pending" and reopened.cursors == {} and reopened.summary == {}
    assert engine.journal.step("migrate-projects").status == "done"
    said = "reopened migrate-expenses: it scanned 0 of the 7 items it counted, unexplained"
    assert any(said in entry.what for entry in engine.journal.audit)
    log = (tmp_path / "j.log").read_text()
    assert "migrate-expenses was marked done, but it scanned 0 of the 7" in log


def test_what_makes_a_migration_unsound() -> None:
    assert unsound_migration(SHORT) is not None
    assert unsound_migration(SOUND) is None
    assert unsound_migration({**SHORT, "shrank_meanwhile": 7}) is None  # deletions explain it
    assert unsound_migration({"entity": "x"}) is None  # older summaries without the counts
