"""The console's rehearsal clock: the top bar always says which clock runs, + and - move it
along the runbook's ladder (journaled), a viewer and a real account cannot move it."""

from __future__ import annotations

from pathlib import Path

from engine.aws.target import Connection
from engine.plan.loader import default_runbook_path
from engine.state.journal import JournalStore
from tests.support.world import seeded_engine
from tui.app import RunbookApp


def topbar(app: RunbookApp) -> str:
    return str(app.screen.query_one("#topbar").render())


async def test_plus_and_minus_move_the_rehearsal_clock(aws: Connection, tmp_path: Path) -> None:
    engine = seeded_engine(
        aws, tmp_path / "j.toml", default_runbook_path(), "world-clock-tui", time_scale=1200
    )
    engine.journal.run.time_scale = 1200  # as a new embedded run records it
    engine.save()
    app = RunbookApp(engine, greet=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert topbar(app).startswith(" REHEARSAL x1200 ·")
        await pilot.press("plus")
        await pilot.pause()
        assert engine.options.time_scale == 3600
        assert topbar(app).startswith(" REHEARSAL x3600 ·")
        await pilot.press("minus", "minus")
        await pilot.pause()
        assert engine.options.time_scale == 60
    saved = JournalStore(tmp_path / "j.toml").load()
    assert saved.run.time_scale == 60
    assert [(c.from_scale, c.to_scale, c.by) for c in saved.run.scale_changes] == [
        (1200, 3600, "alice"),
        (3600, 600, "alice"),
        (600, 60, "alice"),
    ]


async def test_a_viewer_and_a_real_account_cannot_move_the_clock(
    aws: Connection, tmp_path: Path
) -> None:
    engine = seeded_engine(
        aws, tmp_path / "j.toml", default_runbook_path(), "world-clock-ro", time_scale=1200
    )
    engine.journal.run.time_scale = 1200
    engine.save()
    async with RunbookApp(engine, read_only=True, greet=False).run_test(size=(80, 24)) as pilot:
        await pilot.press("plus")
        await pilot.pause()
        assert engine.options.time_scale == 1200
    engine.options.real_account = True
    engine.options.time_scale = 1.0
    engine.journal.run.time_scale = 1.0
    app = RunbookApp(engine, greet=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert topbar(app).startswith(" REAL TIME ·")
        await pilot.press("plus")
        await pilot.pause()
        assert engine.options.time_scale == 1.0
    assert not JournalStore(tmp_path / "j.toml").load().run.scale_changes
