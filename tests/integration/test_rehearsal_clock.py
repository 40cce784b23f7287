"""A rehearsal's clock: a new embedded run fits the plan's waits into about ten minutes, the
scale can change mid-run (journaled), plan time is counted per stretch, a real account stays
at real time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.aws.target import Connection
from engine.core.clock import plan_seconds_between
from engine.core.outcome import CommandRefused
from engine.plan.loader import default_runbook_path, load_runbook
from engine.rehearsal.clock import clock_label, default_scale, next_scale, plan_wait_seconds
from engine.run.engine import Engine
from tests.support.world import seeded_engine

T0 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


def test_the_bundled_plan_waits_three_days_and_the_7_day_check_in_about_ten_minutes() -> None:
    rb = load_runbook(default_runbook_path()).runbook
    waits = plan_wait_seconds(rb)
    # watch windows 120+55+60+60 min, the 24 h soak, the 7-day stability check
    assert waits == (120 + 55 + 60 + 60) * 60 + 24 * 3600 + 168 * 3600
    scale = default_scale(rb)
    assert scale == 1200.0
    assert 9 * 60 <= waits / scale <= 11 * 60
    assert clock_label(scale) == "REHEARSAL x1200" and clock_label(1) == "REAL TIME"


def test_the_ladder_moves_one_rung_and_stops_at_the_ends() -> None:
    ladder = [1, 60, 3600]
    assert next_scale(1200, ladder, faster=True) == 3600
    assert next_scale(1200, ladder, faster=False) == 60
    assert next_scale(3600, ladder, faster=True) == 3600
    assert next_scale(1, ladder, faster=False) == 1


def test_plan_time_is_counted_at_the_scale_each_stretch_ran_at() -> None:
    change = T0 + timedelta(seconds=10)
    steps = [(change, 100.0, 1000.0)]
    end = T0 + timedelta(seconds=30)
    assert plan_seconds_between(steps, 1000.0, T0, end) == 10 * 100 + 20 * 1000
    assert plan_seconds_between([], 60.0, T0, end) == 30 * 60  # no change: one scale
    assert plan_seconds_between(steps, 1000.0, end, T0) == 0.0
    later = T0 + timedelta(seconds=20)  # a start after the change: all at the new scale
    assert plan_seconds_between(steps, 1000.0, later, end) == 10 * 1000


def test_a_new_embedded_run_starts_on_the_rehearsal_clock(tmp_path: Path, capsys) -> None:
    from engine.cli.app import main
    from engine.rehearsal.embedded import record_path_for, stop_world
    from engine.state.journal import JournalStore

    journal = tmp_path / "j.toml"
    try:
        assert main(["run", "--journal", str(journal), "--yes"]) == 3  # at the first gate
    finally:
        stop_world(record_path_for(journal))
    out = capsys.readouterr().out
    assert "clock: REHEARSAL x1200 (the plan's waits take about 10 min)" in out
    assert JournalStore(journal).load().run.time_scale == 1200.0


@pytest.fixture
def engine(aws: Connection, tmp_path: Path) -> Engine:
    return seeded_engine(
        aws, tmp_path / "j.toml", default_runbook_path(), "world-clock", time_scale=1200
    )


def test_changing_the_scale_is_journaled_and_reaches_a_running_clock(engine: Engine) -> None:
    from engine.state.journal import JournalStore

    clock = engine.context_for("x", engine.journal.step("inventory")).clock
    assert clock.time_scale == 1200
    engine.set_time_scale(3600, by="alice")
    assert clock.time_scale == 3600  # a running wait follows at its next tick
    saved = JournalStore(engine.store.path).load()
    assert saved.run.time_scale == 3600
    change = saved.run.scale_changes[-1]
    assert (change.from_scale, change.to_scale, change.by) == (1200, 3600, "alice")
    assert any("time scale x1200 -> x3600" in a.what for a in saved.audit)


def test_a_real_account_stays_at_real_time(engine: Engine) -> None:
    engine.options.real_account = True
    with pytest.raises(CommandRefused):
        engine.set_time_scale(3600, by="alice")
    assert engine.options.time_scale == 1200 and not engine.journal.run.scale_changes
