"""Drive the console with Pilot against a moto world; assert what the journal recorded."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine.aws.target import Connection
from engine.core.events import Alert
from engine.core.views import NodeRef
from engine.run.engine import Engine
from engine.state.journal import JournalStore
from engine.state.lock import JournalLock
from tests.support.paths import MINI_RUNBOOK
from tests.support.pilot_waits import settle, type_text, until_shown
from tests.support.tui_states import HOLDER
from tests.support.world import seeded_engine
from tui.app import RunbookApp
from tui.screens.gate import GateScreen
from tui.screens.prompts import TextPrompt, TypedConfirm, YesNo
from tui.screens.resume import ResumeScreen
from tui.screens.rollback import RollbackScreen


@pytest.fixture
def engine(aws: Connection, tmp_path: Path) -> Engine:
    return seeded_engine(aws, tmp_path / "j.toml", MINI_RUNBOOK, "world-mini", time_scale=1000)


def journal_of(engine: Engine):
    return JournalStore(engine.store.path).load()


def status_of(app: RunbookApp) -> str:
    return str(app.main.query_one("#status").render())


async def test_run_gate_ack_to_the_end(engine: Engine) -> None:
    app = RunbookApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        await settle(pilot)
        assert engine.waiting() == NodeRef.gate("gate-phase2")
        assert "WAITING at gate gate-phase2" in str(app.query_one("#status").render())
        await pilot.press("g")
        await settle(pilot)
        gate = app.screen
        assert isinstance(gate, GateScreen)
        assert gate.check_action("go", ()) is None  # team-ready unticked: GO disabled
        await pilot.press("y")
        await settle(pilot)
        recorded = journal_of(engine).gates.get("gate-phase2")
        assert recorded is None or recorded.decision is None
        await pilot.press("down", "space")
        await pilot.pause()
        assert gate.check_action("go", ()) is True
        await pilot.press("y")
        await settle(pilot)
        assert not isinstance(app.screen, GateScreen)
        await pilot.press("r")
        await settle(pilot)
        assert engine.waiting() == NodeRef.step("handover")
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, TextPrompt)
        await type_text(pilot, "day team told")
        await pilot.press("enter")
        await pilot.press("r")
        await settle(pilot)
        assert "DONE" in str(app.query_one("#status").render())
    journal = journal_of(engine)
    assert journal.gates["gate-phase2"].decision == "GO"
    assert journal.gates["gate-phase2"].by == "alice"
    assert journal.gates["gate-phase2"].ticks["team-ready"].by == "alice"
    assert journal.gates["gate-phase2"].evidence["backups-verified"].ok
    assert journal.steps["handover"].acked_by == "alice"
    assert journal.steps["handover"].ack_note == "day team told"
    assert {s.status for s in journal.steps.values()} == {"done"}


async def test_override_and_no_go_need_words(engine: Engine) -> None:
    app = RunbookApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("g")
        await settle(pilot)
        await pilot.press("n")
        await pilot.pause()
        await pilot.press("enter")  # an empty note is refused; the prompt stays
        await pilot.pause()
        assert isinstance(app.screen, TextPrompt)
        await type_text(pilot, "qa out")
        await pilot.press("enter")
        await settle(pilot)
        assert journal_of(engine).gates["gate-phase2"].decision == "NO-GO"
        await pilot.press("g")
        await settle(pilot)
        await pilot.press("o")
        await pilot.pause()
        await type_text(pilot, "qa ok by phone")
        await pilot.press("enter")
        await settle(pilot)
    gate = journal_of(engine).gates["gate-phase2"]
    assert gate.decision == "GO"
    assert gate.override == "qa ok by phone"
    assert gate.note == ""


async def test_rollback_needs_the_typed_phase_and_escape_cancels(engine: Engine) -> None:
    engine.run()
    engine.decide("gate-phase2", go=True, by="alice", override="rehearsal")
    engine.ack("handover", by="alice")
    engine.run()
    app = RunbookApp(engine, greet=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one("#timeline").select_ref(("step", "handover"))
        await pilot.pause()
        await pilot.press("b")
        await pilot.pause()
        assert isinstance(app.screen, RollbackScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert journal_of(engine).rollbacks == []
        await pilot.press("b")
        await pilot.pause()
        await type_text(pilot, "phase1")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, RollbackScreen)  # wrong token: nothing happens
        assert journal_of(engine).rollbacks == []
        for _ in range(6):
            await pilot.press("backspace")
        await type_text(pilot, "phase2")
        await pilot.press("enter")
        await settle(pilot)
    journal = journal_of(engine)
    assert journal.rollbacks[0].status == "done" and journal.rollbacks[0].by == "alice"
    assert journal.steps["handover"].status == "rolled_back"
    assert journal.gates["gate-phase2"].decision is None


async def test_quit_while_running_asks_then_checkpoints(engine: Engine) -> None:
    """The engine thread is held at its first checkpoint with a backup journaled until the
    operator has answered: no race between the keys and the run."""
    import threading

    from engine.core.events import SnapshotChanged

    reached, release = threading.Event(), threading.Event()

    def hold_at_first_backup(event) -> None:  # the engine's thread
        if not isinstance(event, SnapshotChanged) or reached.is_set():
            return
        step = event.snapshot.step("backup-tables")
        if step.status == "running" and any(t.done for t in step.progress):
            reached.set()
            release.wait(10)

    engine.subscribe(hold_at_first_backup)
    app = RunbookApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        assert await asyncio.to_thread(reached.wait, 10)
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, YesNo)
        await pilot.press("y")
        await pilot.pause()
        assert app.quitting
        release.set()
        assert await asyncio.to_thread(app.idle.wait, 10)  # the engine thread checkpointed
    state = journal_of(engine).steps["backup-tables"]
    assert state.status == "running"  # interrupted at a checkpoint, resumable
    assert 0 < len(state.cursors["backups"]) < 3


async def test_alert_banner_and_read_only(engine: Engine) -> None:
    app = RunbookApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        engine.emit(
            Alert("error-rate", "Error rate > 1%", 5.2, 1.0, "rollback-phase2", "backup-tables")
        )
        banner = app.query_one("#alert")
        await until_shown(pilot, lambda: banner.has_class("visible"), 10, "the alert banner")
        assert "measured 5.2 > threshold 1" in str(banner.render())
        await pilot.press("x")
        assert not banner.has_class("visible")
    viewer = RunbookApp(engine, read_only=True, holder=HOLDER, greet=False)
    async with viewer.run_test(size=(80, 24)) as pilot:
        for action in ("run", "ack", "rollback", "stop"):
            assert viewer.main.check_action(action, ()) is False  # not offered at all
        await pilot.press("r")
        await pilot.pause()
        assert not viewer.running
        assert "driven by bob@bastion-1" in str(viewer.query_one("#topbar").render())
    assert not engine.store.path.exists()  # the viewer wrote nothing


async def test_destructive_step_is_confirmed_before_the_engine_runs(engine: Engine) -> None:
    rb = engine.runbook
    steps = [s.model_copy(update={"destructive": s.id == "final-backups"}) for s in rb.steps]
    engine.runbook = rb.model_copy(update={"steps": steps})
    engine.run()
    engine.decide("gate-phase2", go=True, by="alice", override="rehearsal")
    engine.ack("handover", by="alice")
    app = RunbookApp(engine, greet=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        await settle(pilot)  # the engine never blocks on the screen: the worker has ended
        assert isinstance(app.screen, TypedConfirm)
        saved = journal_of(engine).steps
        assert saved["handover"].status == "done" and "final-backups" not in saved
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, TypedConfirm)
        assert engine.journal.step("final-backups").status == "pending"
        await pilot.press("r")
        await pilot.pause()
        await type_text(pilot, "phase1")  # the wrong phase does nothing
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, TypedConfirm)
        for _ in range(6):
            await pilot.press("backspace")
        await type_text(pilot, "phase2")
        await pilot.press("enter")
        await settle(pilot)
        assert "DONE" in str(app.query_one("#status").render())
    journal = journal_of(engine)
    assert journal.steps["final-backups"].status == "done"
    assert journal.steps["handover"].status == "done"


async def test_read_only_viewer_derives_rate_and_eta_from_checkpoints(engine: Engine) -> None:
    """A viewer gets no engine events: its items/s and ETA come from successive journal
    checkpoints written by the driver."""
    from textual.clock import MockClock

    from engine.state.journal import TableProgress
    from tui.widgets.table_progress import ProgressPanel

    driver = JournalStore(engine.store.path)
    journal = engine.journal.model_copy(deep=True)
    state = journal.step("backup-tables")
    state.status = "running"
    state.progress["legacy-expenses"] = TableProgress(done=100, total=1000)
    driver.save(journal)

    def follow(eng: Engine) -> None:
        eng.journal = driver.load()

    clock = MockClock(0.0)
    viewer = RunbookApp(
        engine, read_only=True, holder=HOLDER, greet=False, follow=follow, clock=clock
    )
    with JournalLock(engine.store.path, "run"):  # a driver holds the journal
        async with viewer.run_test(size=(80, 24)) as pilot:
            viewer.follow_driver()
            await pilot.pause()
            state.progress["legacy-expenses"] = TableProgress(done=300, total=1000)
            driver.save(journal)
            clock.set_time(2.0)
            viewer.follow_driver()
            await pilot.pause()
            row = viewer.main.query_one(ProgressPanel).rows["legacy-expenses"]
            figures = str(row.figures.render())
            assert "300/1,000 30.0% 100/s ETA 0:07" in figures, figures
            assert "RUNNING backup-tables (driven elsewhere)" in status_of(viewer)


async def test_too_small_notice_follows_every_resize(engine: Engine) -> None:
    app = RunbookApp(engine, greet=False)
    async with app.run_test(size=(120, 40)) as pilot:
        main_screen = app.screen
        assert not main_screen.has_class("too-small")
        await pilot.resize_terminal(70, 20)
        assert main_screen.has_class("too-small")
        await pilot.resize_terminal(80, 24)  # exactly enough: the console, not the notice
        assert not main_screen.has_class("too-small")
        await pilot.press("g")  # a screen on top: a resize still counts for the main one
        await pilot.pause()
        await pilot.resize_terminal(60, 15)
        assert main_screen.has_class("too-small")


async def test_refused_go_shows_what_the_engine_measured(engine: Engine) -> None:
    """A backup vanishes while the gate screen reads all-met: GO is refused, and the screen
    re-checks at once instead of still claiming every item is met."""
    app = RunbookApp(engine, greet=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("g")
        await settle(pilot)
        gate = app.screen
        assert isinstance(gate, GateScreen)
        await pilot.press("down", "space")
        await pilot.pause()
        assert gate.check_action("go", ()) is True
        arn = next(iter(engine.journal.steps["backup-tables"].cursors["backups"].values()))["arn"]
        engine.clients("dynamodb").delete_backup(BackupArn=arn)
        await pilot.press("y")
        await settle(pilot)
        await settle(pilot)
        assert app.screen is gate
        assert gate.item_ok("backups-verified") is False
        assert gate.check_action("go", ()) is None
        assert "GO disabled" in str(gate.query_one("#gate-verdict").render())
    assert journal_of(engine).gates["gate-phase2"].decision is None


async def test_gate_opened_while_running_says_why_it_is_read_only(engine: Engine) -> None:
    viewer = RunbookApp(engine, read_only=True, holder=HOLDER, greet=False)
    async with viewer.run_test(size=(80, 24)) as pilot:
        await pilot.press("g")
        await pilot.pause()
        verdict = str(viewer.screen.query_one("#gate-verdict").render())
        assert verdict.startswith("READ-ONLY: another console drives this run")


def _fail_with_alert(journal, step_id: str = "handover") -> None:
    journal.step(step_id).status = "failed"
    journal.step(step_id).error = "TriggerFired: trigger error-rate fired: 5% > 1%"
    journal.alerts.append(
        {
            "trigger": "error-rate",
            "step": step_id,
            "phase": "phase2",
            "at": "2026-11-29T02:00:00Z",
            "message": "error rate 5% > 1%",
            "measured": 5.0,
            "threshold": 1.0,
            "rollback": "rollback-phase2",
        }
    )


async def test_viewer_sees_new_alerts_and_a_driver_that_left(engine: Engine) -> None:
    driver = JournalStore(engine.store.path)
    journal = engine.journal.model_copy(deep=True)
    driver.save(journal)

    def follow(eng: Engine) -> None:
        eng.journal = driver.load()

    viewer = RunbookApp(engine, read_only=True, holder=HOLDER, greet=False, follow=follow)
    async with viewer.run_test(size=(80, 24)) as pilot:
        banner = viewer.query_one("#alert")
        assert not banner.has_class("visible")
        _fail_with_alert(journal)
        driver.save(journal)
        viewer.follow_driver()
        await pilot.pause()
        assert banner.has_class("visible")  # the alert reaches whoever watches
        topbar = str(viewer.query_one("#topbar").render())
        assert "nobody drives: q, then runbook" in topbar  # nobody holds the lock in this test


async def test_greeting_after_a_trigger_offers_the_rollback_first(engine: Engine) -> None:
    engine.run()
    _fail_with_alert(engine.journal)
    app = RunbookApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        greeting = app.screen
        assert isinstance(greeting, ResumeScreen)
        assert list(greeting.offers()) == ["b", "r"]
        assert "proposed rollback is rollback-phase2" in greeting.summary
        await pilot.press("b")
        await pilot.pause()
        assert isinstance(app.screen, RollbackScreen)
        assert app.screen.rollback.id == "rollback-phase2"


async def test_greeting_at_a_manual_step_offers_acknowledge(engine: Engine) -> None:
    engine.run()
    engine.decide("gate-phase2", go=True, by="alice", override="test")
    engine.run()
    assert engine.waiting() == NodeRef.step("handover")
    app = RunbookApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert list(app.screen.offers()) == ["a"]
        await pilot.press("r")  # not offered: nothing happens
        await pilot.pause()
        assert isinstance(app.screen, ResumeScreen)
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, TextPrompt)


async def test_keys_screen_lists_the_consoles_own_keys_first(engine: Engine) -> None:
    from tui.screens.keys import KeysScreen

    app = RunbookApp(engine, greet=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        keys = app.screen
        assert isinstance(keys, KeysScreen)
        lines = keys.text.splitlines()
        assert lines[0].split()[0] == "r" and "Run steps until a gate" in lines[0]
        assert any(line.split()[0] == "x" and "Hide the alert" in line for line in lines)
        assert any("Stop" in line and "(not now)" in line for line in lines)  # nothing runs
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("g")
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert any("Tick/untick" in line for line in app.screen.text.splitlines())


async def test_findings_are_accepted_with_a_reason_from_the_console(engine: Engine) -> None:
    state = engine.journal.step("backup-tables")
    state.status, state.error = "failed", "validation found problems (missing=1)"
    state.needs_acceptance = True
    state.summary = {"ok": False}
    app = RunbookApp(engine, greet=False)
    async with app.run_test(size=(80, 24)) as pilot:
        assert "WAITING at step backup-tables" in str(app.query_one("#status").render())
        await pilot.press("a")
        await pilot.pause()
        prompt = app.screen
        assert isinstance(prompt, TextPrompt) and "missing=1" in str(
            prompt.query("Static")[1].render()
        )
        await pilot.press("enter")  # a reason is required
        await pilot.pause()
        assert app.screen is prompt
        await type_text(pilot, "known gap")
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("r")
        await settle(pilot)
    done = journal_of(engine).steps["backup-tables"]
    assert done.status == "done" and done.summary["accepted_by"] == "alice"
    assert done.ack_note == "known gap"


async def test_engine_events_after_the_screens_are_gone_are_dropped(engine: Engine) -> None:
    """An engine thread may post while the console closes (CI saw IndexError in the handler):
    once the screens are gone, events and resizes are dropped, not raised."""
    from textual.geometry import Size

    from tui.messages import wrap

    app = RunbookApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
    assert not app.screen_stack
    app._on_engine_event(wrap(Alert("error-rate", "Error rate > 1%", 5.2, 1.0, None, None)))
    app._check_size(Size(40, 10))


def test_the_top_bar_keeps_who_you_are_at_any_clock_and_80_columns(engine: Engine) -> None:
    """Issue 20, items 16 and 19: the fastest clock and a long target: the operator's name and
    the mode stay whole; the target, then the runbook id, are what a narrow bar leaves out."""
    from tui.lines import topbar_text

    engine.set_time_scale(10_000_000, by="al")
    snap = engine.snapshot()
    bar = topbar_text(snap, "margaret.hamilton", False, None, width=80)
    assert len(bar) <= 80 and "DRIVING · margaret.hamilton" in bar and "x10000000" in bar
    alone = topbar_text(snap, "al", True, None, width=80)  # read-only, nobody drives
    assert len(alone) <= 80 and alone.endswith("nobody drives: q, then runbook")
    wide = topbar_text(snap, "al", False, None, width=200)
    assert "world-mini" in wide  # room enough: the target is shown


async def test_a_viewer_greeting_follows_the_run_and_offers_no_keys_it_lacks(
    engine: Engine,
) -> None:
    """Issue 20, item 16: a viewer's greeting said the run waits at a step while its status
    line had moved on to the gate; and its detail pane offered r, which it does not have."""
    from engine.state.journal import StepState
    from tui.screens.resume import ResumeScreen

    driver = JournalStore(engine.store.path)
    journal = engine.journal.model_copy(deep=True)
    journal.steps["backup-tables"] = StepState(status="running", attempts=1)  # its driver left
    driver.save(journal)

    def follow(eng: Engine) -> None:
        eng.journal = driver.load()

    follow(engine)  # the viewer opens on the journal as the driver left it
    viewer = RunbookApp(engine, read_only=True, holder=None, follow=follow)
    async with viewer.run_test(size=(80, 24)) as pilot:
        viewer.follow_driver()
        await pilot.pause()
        assert isinstance(viewer.screen, ResumeScreen)
        assert "backup-tables was interrupted" in str(
            viewer.screen.query_one("#greeting-text").render()
        )
        journal.steps["backup-tables"] = StepState(status="done", attempts=2)
        driver.save(journal)  # the driver finished it meanwhile: the run now waits at the gate
        viewer.follow_driver()
        await pilot.pause()
        said = str(viewer.screen.query_one("#greeting-text").render())
        assert "The run waits at gate gate-phase2" in said and "interrupted" not in said, said
        await pilot.press("escape")
        journal.steps["backup-tables"] = StepState(status="running", attempts=2)
        driver.save(journal)
        viewer.follow_driver()
        await pilot.pause()
        detail = str(viewer.main.query_one("#detail-text").render())
        assert "`runbook` resumes it" in detail and "r resumes" not in detail, detail
