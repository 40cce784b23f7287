"""What the operator sees is true: each point is driven with Pilot against moto (or a frozen
state) and checked on the screen, not only in the journal."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from engine.aws.target import Connection
from engine.core.events import LogLine, SnapshotChanged
from engine.core.views import NodeRef
from engine.run.engine import Engine
from engine.state.journal import JournalStore
from engine.state.lock import JournalLock
from tests.support import tui_states as states
from tests.support.paths import MINI_RUNBOOK
from tests.support.pilot_waits import screen_text, settle, type_text, until_shown
from tests.support.world import seeded_engine
from tui.app import RunbookApp
from tui.screens.gate import GateScreen
from tui.screens.keys import KeysScreen


@pytest.fixture
def engine(aws: Connection, tmp_path: Path) -> Engine:
    return seeded_engine(aws, tmp_path / "j.toml", MINI_RUNBOOK, "world-mini", time_scale=1000)


def text_of(app: RunbookApp, selector: str) -> str:
    return str(app.main.query_one(selector).render())


def hold_at_first_backup(engine: Engine) -> tuple[threading.Event, threading.Event]:
    """The engine thread waits at its first checkpoint with a backup made until released."""
    reached, release = threading.Event(), threading.Event()

    def hold(event) -> None:
        if not isinstance(event, SnapshotChanged) or reached.is_set():
            return
        step = event.snapshot.step("backup-tables")
        if step.status == "running" and any(t.done for t in step.progress):
            reached.set()
            release.wait(10)

    engine.subscribe(hold)
    return reached, release


async def test_after_a_stop_nothing_shows_as_running(engine: Engine) -> None:
    reached, release = hold_at_first_backup(engine)
    app = RunbookApp(engine, greet=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        assert await asyncio.to_thread(reached.wait, 10)
        await pilot.pause()
        assert "RUNNING backup-tables" in text_of(app, "#status")
        await pilot.press("s")
        release.set()
        await settle(pilot)
        status = text_of(app, "#status")
        assert "INTERRUPTED backup-tables" in status and "r resumes" in status
        assert app.snapshot.step("backup-tables").status == "interrupted"
        shown = screen_text(app)
        assert "▶" not in shown  # no running glyph anywhere in the timeline
        assert "RUNNING" not in shown
        detail = text_of(app, "#detail-text")
        assert "INTERRUPTED  attempt 1" in detail and "stopped" in detail
    assert JournalStore(engine.store.path).load().steps["backup-tables"].status == "running"


async def test_rollback_reopens_a_gate_with_fresh_evidence_and_no_old_ticks(
    engine: Engine,
) -> None:
    engine.run()
    engine.tick("gate-phase2", "team-ready", by="bob")
    engine.decide("gate-phase2", go=True, by="alice")
    engine.ack("handover", by="alice")
    engine.run()
    assert engine.journal.gates["gate-phase2"].evidence["backups-verified"].ok
    app = RunbookApp(engine, greet=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.main.query_one("#timeline").select_ref(("step", "handover"))
        await pilot.pause()
        await pilot.press("b")
        await pilot.pause()
        await type_text(pilot, "phase2")
        await pilot.press("enter")
        await settle(pilot)
        gate = app.snapshot.gate("gate-phase2")
        assert gate.decision is None
        assert [(i.id, i.ok) for i in gate.items] == [
            ("backups-verified", None),  # stale evidence dropped: evaluated again
            ("team-ready", False),  # the old tick is cleared
        ]
        detail = text_of(app, "#detail-text")
        assert "[?] All backups verified (auto)" in detail
        assert "[ ] Team ready (manual)" in detail
        await pilot.press("g")  # opening the gate evaluates its automatic items again
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, GateScreen)
        assert screen.item("backups-verified").ok is True
        assert screen.item("backups-verified").at is not None
        assert screen.item("team-ready").ok is False
    audit = [a.what for a in JournalStore(engine.store.path).load().audit]
    assert any(a.startswith("tick gate-phase2/team-ready by bob at ") for a in audit)


async def test_a_read_only_console_shows_the_drivers_latest_evidence(engine: Engine) -> None:
    engine.run()  # the driver reaches the gate and evaluates it
    taken = engine.journal.gates["gate-phase2"].evidence["backups-verified"]
    assert taken.ok and taken.at

    def follow(eng: Engine) -> None:
        eng.journal = JournalStore(engine.store.path).load()

    viewer_engine = states.engine_for(engine.runbook, engine.journal.model_copy(), Path("/"))
    viewer_engine.store = engine.store
    viewer = RunbookApp(viewer_engine, read_only=True, follow=follow, greet=False)
    with JournalLock(engine.store.path, "run"):
        async with viewer.run_test(size=(80, 24)) as pilot:
            viewer.follow_driver()
            await pilot.press("g")
            await pilot.pause()
            gate = viewer.screen
            assert isinstance(gate, GateScreen)
            item = gate.item("backups-verified")
            assert item.ok is True and item.detail == taken.detail
            shown = screen_text(viewer)
            assert "not evaluated yet" not in shown
            assert taken.detail[:40] in shown
            assert "taken " in shown


async def test_notifications_never_cover_the_status_line(engine: Engine) -> None:
    app = RunbookApp(engine, greet=False)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        for n in range(3):
            app.notify(f"note {n}: long enough to take two lines of a toast " * 2, timeout=120)
        for _ in range(400):  # until the toasts are laid out (slow on a loaded machine)
            await pilot.pause(0.05)
            toasts = list(app.screen.query("Toast"))
            if len(toasts) == 3 and all(t.region.height for t in toasts):
                break
        status = app.main.query_one("#status").region
        assert len(toasts) == 3 and all(t.region.height for t in toasts)
        for toast in toasts:
            assert not toast.region.overlaps(status), (toast.region, status)
        assert "r runs" in text_of(app, "#status")
        assert "r runs" in screen_text(app).splitlines()[status.y]


async def until_true(pilot, condition, seconds: float = 30.0) -> None:
    """Let the app run until `condition()` holds or `seconds` pass (a loaded machine lays out
    slowly); the caller asserts what it needs."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        await pilot.pause(0.02)


async def test_a_manual_steps_instructions_scroll_whole_at_80x24(tmp_path: Path) -> None:
    engine = states.fresh(tmp_path)
    step = engine.runbook.step("final-preparation")
    assert step.kind == "manual"
    last_words = step.instructions.split()[-2:]
    app = RunbookApp(engine, greet=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.main.query_one("#timeline").select_ref(("step", "final-preparation"))
        detail = app.main.query_one("#detail")
        await until_true(  # the new text laid out (a deadline, not a sleep)
            pilot, lambda: detail.max_scroll_y > 0 and "more" in str(detail.border_subtitle)
        )
        assert detail.max_scroll_y > 0  # it does not fit: it scrolls…
        assert "more" in str(detail.border_subtitle)  # …and says so
        await pilot.press("tab")  # focus the detail pane
        assert app.focused is detail
        for _ in range(10):
            await pilot.press("down")
        await until_true(
            pilot,
            lambda: (
                detail.scroll_y == detail.max_scroll_y and "more" not in str(detail.border_subtitle)
            ),
        )
        assert detail.scroll_y == detail.max_scroll_y
        shown = screen_text(app)
        assert " ".join(last_words).rstrip(".") in " ".join(shown.split()), shown
        assert "more" not in str(detail.border_subtitle)


async def test_the_read_only_top_bar_names_driver_and_viewer(tmp_path: Path) -> None:
    viewer = RunbookApp(
        states.mid_migration(tmp_path), read_only=True, holder=states.HOLDER, greet=False
    )
    async with viewer.run_test(size=(80, 24)):
        top = text_of(viewer, "#topbar")
        assert "driven by bob@bastion-1" in top and "you: alice" in top


async def test_keys_lists_every_key_or_scrolls_with_a_hint(engine: Engine) -> None:
    app = RunbookApp(engine, greet=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        await pilot.pause()
        keys = app.screen
        assert isinstance(keys, KeysScreen)
        for binding in app.main.BINDINGS:
            if binding.action.endswith("toggle_keys"):
                continue
            if app.main.check_action(binding.action, ()) is False:
                continue  # never on this console (e.g. Pause: only when attached)
            assert binding.description in keys.text
        scroll = keys.query_one("#keys-list")
        for _ in range(100):  # until laid out and the hint agrees with it
            await pilot.pause(0.02)
            hint = str(keys.query_one("#keys-hint").render())
            if scroll.size.height and ("more keys below" in hint) == (scroll.max_scroll_y > 0):
                break
        if scroll.max_scroll_y > 0:
            assert "more keys below" in hint
            for _ in range(20):
                await pilot.press("down")
            for _ in range(100):
                await pilot.pause(0.02)
                if "more keys below" not in str(keys.query_one("#keys-hint").render()):
                    break
            assert "more keys below" not in str(keys.query_one("#keys-hint").render())
        else:  # it all fits: every line is on the screen
            shown = screen_text(app)
            for line in keys.text.splitlines():
                assert line.strip()[:30] in shown


async def test_a_gate_or_manual_steps_log_pane_shows_only_its_own_lines(engine: Engine) -> None:
    app = RunbookApp(engine, greet=False)
    async with app.run_test(size=(80, 24)) as pilot:
        for step_id, message in [
            (None, "run-wide line"),
            ("gate-phase2", "bob ticked gate-phase2/team-ready"),
            ("handover", "handover note"),
            ("backup-tables", "backup line"),
        ]:
            engine.emit(LogLine(step_id, "info", message, "2024-12-01T09:00:00Z"))
        await pilot.pause()
        for ref, own in [("gate-phase2", "ticked"), ("handover", "handover note")]:
            app.main.query_one("#timeline").select_ref(("gate" if "gate" in ref else "step", ref))
            pane = app.main.query_one("#steplog")
            shown = await until_shown(
                pilot, lambda pane=pane, own=own: own in _lines(pane) and _lines(pane), 10, own
            )
            assert own in shown, shown
            assert shown.count("INFO") == shown.count(f"[{ref}]") == 1, shown
            assert "run-wide" not in shown and "backup line" not in shown


async def test_a_watch_steps_first_tick_says_starting(engine: Engine) -> None:
    """The first progress of a watch window (as ActionContext.progress sends it, with one
    sample no rate yet) reads "starting", never 0/s ETA --:--."""
    from engine.state.journal import StepState

    app = RunbookApp(engine, greet=False)
    async with app.run_test(size=(80, 24)) as pilot:
        state = engine.journal.step("backup-tables")
        state.status = "running"
        engine._active = True  # as while run() runs this step
        ctx = engine.context_for("backup-tables", state)
        ctx.progress("watch window (plan seconds)", 60, 7200)
        await pilot.pause()
        row = app.main.query_one("#progress").rows["watch window (plan seconds)"]
        figures = str(row.figures.render())
        assert figures == "60/7,200 0.8% starting", figures
        assert "0/s" not in figures and "--:--" not in figures
        engine._active = False
        assert StepState  # the slot is the journal's own


def test_scaled_windows_say_plan_time_and_real_time(make_ctx, world) -> None:
    """Evidence of a metric window at x3600: "60 plan min = 1 s at x3600", and the real
    window read when CloudWatch's shortest is longer; the same words at every scale."""
    from engine.checks.ops import CHECKS
    from engine.core.timetext import plan_span

    assert plan_span(60, 3600) == "60 plan min = 1 s at x3600"
    assert plan_span(60, 1) == "60 min"
    check = next(c for c in CHECKS if c.name == "error_rate_below")
    ctx, _ = make_ctx("gate-phase4:performance-acceptable", world, time_scale=3600)
    result = check.evaluate(
        ctx, check.params.model_validate({"max_percent": 1.0, "window_minutes": 60})
    )
    assert "last 60 plan min = 1 s at x3600" in result.detail, result.detail
    assert "read as the last 2 min" in result.detail


def test_status_text_has_no_python_reprs(engine: Engine) -> None:
    from engine.run.status_text import render_status

    engine.run()
    text = "\n".join(render_status(engine.snapshot()))
    assert "waiting at gate gate-phase2" in text
    assert "unticked: team-ready" in text
    for repr_ in ("None", "{'", "[]", "=7/None"):
        assert repr_ not in text, repr_
    assert engine.waiting() == NodeRef.gate("gate-phase2")


async def test_a_late_progress_event_leaves_no_bar_under_a_manual_step(tmp_path: Path) -> None:
    """Issue 20, item 18: the run moved on to a manual step; a progress event of the step before
    it, still queued, must not put that step's bar under the manual step's detail."""
    from engine.core.events import Progress
    from tui.widgets.table_progress import ProgressPanel

    engine = states.fresh(tmp_path)
    states.full_until(engine.runbook, engine.journal, "final-preparation")
    app = RunbookApp(engine, greet=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.main.shown_ref() == NodeRef.step("final-preparation")
        engine.emit(Progress("analyze-data-volume", "legacy", 7, 7, 100.0, 0.0))
        await pilot.pause()
        panel = app.main.query_one(ProgressPanel)
        assert panel.rows == {} and panel.step_id in (None, "final-preparation")
        engine.emit(Progress("final-preparation", "legacy", 1, 2, None, None))  # in view: shown
        await until_shown(pilot, lambda: list(panel.rows) == ["legacy"], 10, "the row")


async def wait_for_screen(pilot, kind: type) -> object:
    """The app's screen once it is a `kind` (an observable condition, with a deadline)."""
    for _ in range(200):
        if isinstance(pilot.app.screen, kind):
            return pilot.app.screen
        await pilot.pause(0.05)
    raise AssertionError(f"no {kind.__name__} shown")


async def test_on_the_gate_screen_toasts_never_cover_the_verdict(tmp_path: Path) -> None:
    """Issue 20, item 17: "o = GO▌…" hid "n = NO-GO"; the verdict is the last row above the
    footer, which the toasts keep clear of."""
    engine = states.fresh(tmp_path)
    app = RunbookApp(engine, greet=False)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await pilot.press("g")
        gate = await wait_for_screen(pilot, GateScreen)
        for n in range(3):
            app.notify(f"note {n}: long enough to take two lines of a toast " * 2, timeout=120)
        for _ in range(400):  # until the toasts are laid out (slow on a loaded machine)
            await pilot.pause(0.05)
            toasts = list(app.screen.query("Toast"))
            if len(toasts) == 3 and all(t.region.height for t in toasts):
                break
        verdict = gate.query_one("#gate-verdict").region
        assert len(toasts) == 3 and verdict.height
        for toast in toasts:
            assert not toast.region.overlaps(verdict), (toast.region, verdict)


async def test_the_gate_screen_measures_again_at_the_pace_of_the_clock(tmp_path: Path) -> None:
    """Issue 20, item 17: at a fast rehearsal clock, evidence went stale until `e`; it is
    measured again every 30 plan seconds (no sooner than 5 s after the last), without a key."""
    engine = states.fresh(tmp_path)
    engine.set_time_scale(3600, by="al")  # 30 plan s = 8 ms: every 5 s
    app = RunbookApp(engine, greet=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("g")
        gate = await wait_for_screen(pilot, GateScreen)
        seen: set[float] = set()
        for _ in range(600):  # until three evaluations ended, the screen asking for each
            seen.add(gate.evaluated_at)
            if len(seen - {0.0}) >= 3:
                break
            await pilot.pause(0.05)
        assert len(seen - {0.0}) >= 3, seen


async def test_a_viewers_log_pane_shows_the_lines_of_the_step_its_title_names(
    tmp_path: Path,
) -> None:
    """Issue 20, item 16: an attached or read-only console learns that the run moved on from
    snapshots, not from a StepStarted; its log pane was titled for one step and showed the
    next one's lines. Title and lines follow what is in view together."""
    from engine.core.events import LogLine, format_log_line
    from engine.state.files import append_private
    from engine.state.journal import StepState

    engine = states.fresh(tmp_path)
    driver = JournalStore(engine.store.path)
    journal = engine.journal.model_copy(deep=True)
    states.full_until(engine.runbook, journal, "inventory")  # the first gate is GO
    journal.steps["inventory"] = StepState(status="running", attempts=1)
    driver.save(journal)
    log = engine.store.log_path

    def line(step: str, text: str) -> None:
        append_private(
            log, format_log_line(LogLine(step, "info", text, ""), "2024-12-01T10:00:00Z") + "\n"
        )

    line("inventory", "counting tables")

    def follow(eng: Engine) -> None:
        eng.journal = driver.load()

    follow(engine)
    viewer = RunbookApp(engine, read_only=True, holder=states.HOLDER, greet=False, follow=follow)
    async with viewer.run_test(size=(80, 24)) as pilot:
        viewer.follow_driver()
        await pilot.pause()
        pane = viewer.main.query_one("#steplog")
        assert pane.border_title == "log · inventory"
        journal.steps["inventory"] = StepState(status="done", attempts=1)
        journal.steps["backup-tables"] = StepState(status="running", attempts=1)
        driver.save(journal)
        line("backup-tables", "creating backups")
        viewer.follow_driver()
        await pilot.pause()
        shown = "\n".join(strip.text for strip in pane.lines)
        assert pane.border_title == "log · backup-tables", pane.border_title
        assert "creating backups" in shown and "counting tables" not in shown, shown


def _lines(pane) -> str:
    return " ".join(strip.text for strip in pane.lines)
