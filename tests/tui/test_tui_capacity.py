"""Issue 21: the console's progress row and `status` show the migration's consumed capacity
units against its budget, as the step reports them."""

from __future__ import annotations

from pathlib import Path

from engine.core.events import Progress, SnapshotChanged
from engine.run.status_text import render_status
from tests.support import tui_states as states
from tests.support.pilot_waits import until_shown
from tui.app import RunbookApp
from tui.format import progress_text
from tui.widgets.table_progress import ProgressPanel

TABLE = "construction-expenses-multi-table-expenses"
LINE = "WCU 480/500 RCU 120/250 x0.5 (WriteThrottleEvents)"


def test_the_progress_text_ends_with_the_capacity_line() -> None:
    text = progress_text(500, 1000, 250.0, 2.0, in_flight=(3, 8), capacity=LINE)
    assert text.endswith(f"3/8w {LINE}")
    assert progress_text(500, 1000, None, None, live=False, capacity=LINE) == "500/1,000 50.0%"


def test_status_shows_the_capacity_line_while_the_step_runs(tmp_path: Path) -> None:
    engine = states.mid_migration(tmp_path)
    engine.emit(Progress("migrate-expenses", TABLE, 1300, 7000, 90.0, 60.0, (2, 8), LINE))
    lines = render_status(engine.snapshot(active=True))
    # done/total from the journal, the capacity line from the step's latest progress event
    assert any(f"{TABLE} 1,234/7,000 [{LINE}]" in line for line in lines), lines


async def test_the_console_row_shows_consumed_units_against_the_budget(tmp_path: Path) -> None:
    engine = states.mid_migration(tmp_path)
    app = RunbookApp(engine, greet=False)
    async with app.run_test(size=(120, 30)) as pilot:
        panel = app.main.query_one(ProgressPanel)
        # the row drawn from the journal first: an event before it would have no row to update
        await until_shown(pilot, lambda: TABLE in panel.rows, 10, "the table's row")
        engine.emit(Progress("migrate-expenses", TABLE, 1300, 7000, 90.0, 60.0, (2, 8), LINE))
        # as the engine does at its next checkpoint: the snapshot carries the line too, so the
        # console's periodic redraw from the snapshot keeps it
        engine.emit(SnapshotChanged(engine.snapshot(active=True)))

        def figures() -> str:
            row = panel.rows.get(TABLE)
            return str(row.figures.render()) if row is not None else ""

        await until_shown(pilot, lambda: figures().endswith(LINE), 10, "the capacity figures")
