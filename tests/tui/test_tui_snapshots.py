"""Snapshots of every screen at 80x24 and 120x40, in representative, frozen states."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.clock import MockClock

from engine.core.events import MetricSample, Progress
from engine.state.journal import TableProgress
from tests.support import tui_states as states
from tui.app import RunbookApp

SIZES = [(80, 24), (120, 40)]
EXPENSES = "construction-expenses-multi-table-expenses"


async def until(pilot, condition, rounds: int = 200) -> None:
    """Let the app process its messages until `condition` holds (a failed wait fails the test)."""
    for _ in range(rounds):
        if condition():
            return
        await pilot.pause()
    raise AssertionError("the app never reached the state the snapshot needs")


def steady_cursor(pilot) -> None:
    """An input's cursor blinks on a timer: a snapshot must not depend on when it is taken."""
    from textual.widgets import Input

    for widget in pilot.app.screen.query(Input):
        widget.cursor_blink = False


def app(engine, **kwargs) -> RunbookApp:
    return RunbookApp(engine, clock=MockClock(), **kwargs)


@pytest.mark.parametrize("size", SIZES)
def test_fresh_run(snap_compare, tmp_path: Path, size) -> None:
    assert snap_compare(app(states.fresh(tmp_path)), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_mid_migration_progress(snap_compare, tmp_path: Path, size) -> None:
    engine = states.mid_migration(tmp_path)

    async def live_progress(pilot) -> None:
        # as a running engine does: the journal slot first, the event, then a checkpoint
        engine._active = True
        engine.journal.steps["migrate-expenses"].progress[EXPENSES] = TableProgress(
            done=4321, total=7000
        )
        engine.emit(Progress("migrate-expenses", EXPENSES, 4321, 7000, 912.4, 2936.0))
        engine._publish(engine.snapshot())
        await pilot.pause()

    assert snap_compare(app(engine, greet=False), terminal_size=size, run_before=live_progress)


@pytest.mark.parametrize("size", SIZES)
def test_resume_greeting(snap_compare, tmp_path: Path, size) -> None:
    assert snap_compare(app(states.mid_migration(tmp_path)), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_failed_step(snap_compare, tmp_path: Path, size) -> None:
    assert snap_compare(app(states.failed_step(tmp_path), greet=False), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_alert_banner(snap_compare, tmp_path: Path, size) -> None:
    engine = states.alert(tmp_path)

    async def error_rates(pilot) -> None:
        for value in [0.1, 0.2, 0.1, 0.4, 0.9, 1.8, 3.1, 5.2]:
            engine.emit(MetricSample("read-shift-10", "error_rate", value))
        await pilot.pause()

    assert snap_compare(app(engine, greet=False), terminal_size=size, run_before=error_rates)


@pytest.mark.parametrize("size", SIZES)
def test_run_log_filtered(snap_compare, tmp_path: Path, size) -> None:
    async def filter_warnings(pilot) -> None:
        await pilot.press("l")
        await pilot.press("slash")
        for char in "warn":
            await pilot.press(char)
        await pilot.pause()
        steady_cursor(pilot)

    assert snap_compare(
        app(states.mid_migration(tmp_path), greet=False),
        terminal_size=size,
        run_before=filter_warnings,
    )


def test_step_log_full_screen(snap_compare, tmp_path: Path) -> None:
    async def step_log(pilot) -> None:
        await pilot.press("L")
        await pilot.pause()

    assert snap_compare(
        app(states.mid_migration(tmp_path), greet=False),
        terminal_size=(80, 24),
        run_before=step_log,
    )


@pytest.mark.parametrize("size", SIZES)
def test_gate_with_one_failing_check(snap_compare, tmp_path: Path, size) -> None:
    async def open_gate(pilot) -> None:
        await pilot.press("g")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(
        app(states.mini_gate(tmp_path), greet=False), terminal_size=size, run_before=open_gate
    )


@pytest.mark.parametrize("size", SIZES)
def test_rollback_confirmation(snap_compare, tmp_path: Path, size) -> None:
    engine = states.mini_gate(tmp_path)

    async def open_rollback(pilot) -> None:
        main = pilot.app.main
        await until(pilot, lambda: main.ready)
        timeline = main.query_one("#timeline")

        def cursor_on(ref: tuple[str, str]) -> bool:
            node = timeline.cursor_node
            return node is not None and tuple(node.data or ()) == ref

        # the screen first puts the cursor on what waits now (after its first refresh): only
        # then may the operator browse, or the follow would move the cursor back
        await until(pilot, lambda: cursor_on(("gate", "gate-phase2")))
        timeline.select_ref(("step", "handover"))
        await until(pilot, lambda: main.selected is not None and cursor_on(("step", "handover")))
        await pilot.press("b")
        await pilot.pause()
        steady_cursor(pilot)

    assert snap_compare(app(engine, greet=False), terminal_size=size, run_before=open_rollback)


@pytest.mark.parametrize("size", SIZES)
def test_read_only_mode(snap_compare, tmp_path: Path, size) -> None:
    engine = states.mid_migration(tmp_path)
    assert snap_compare(
        app(engine, read_only=True, holder=states.HOLDER, greet=False), terminal_size=size
    )


def test_too_small_terminal(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(app(states.fresh(tmp_path)), terminal_size=(60, 20))
