"""Security promises on the console (the CLI's are in tests/e2e/test_security.py), driven with Pilot
on a moto world whose runbook has destructive steps (functions, log groups, routes, tables)
behind one gate:
- every AWS call the engine sends is recorded by a botocore hook; no console path (run key,
  acknowledge, gate screen, rollback keys, the greeting) sends a destructive call without a
  recorded GO, and none deletes a table without an AVAILABLE backup (checked at each call);
- a secret planted in every seeded Lambda's environment never appears in the text of any
  screen the console shows (what is on screen, and every line of its logs and panels)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.widgets import OptionList, RichLog, Static

from engine.aws.target import Connection
from engine.core.views import NodeRef
from engine.run.engine import Engine
from engine.state.journal import JournalStore
from tests.support.paths import CONSOLE_SAFETY_RUNBOOK
from tests.support.pilot_waits import settle, type_text
from tests.support.world import seeded_engine
from tui.app import RunbookApp
from tui.screens.gate import GateScreen
from tui.screens.keys import KeysScreen
from tui.screens.log import LogScreen
from tui.screens.prompts import TextPrompt, TypedConfirm
from tui.screens.resume import ResumeScreen
from tui.screens.rollback import RollbackScreen

RUNBOOK = CONSOLE_SAFETY_RUNBOOK
SECRET = "PLANTEDconsoleSecret5e2b"  # the runbook's [embedded] function_env, on every function
DESTRUCTIVE = {
    "DeleteTable", "DeleteFunction", "DeleteLogGroup", "DeleteResource", "DeleteMethod",
    "DeleteRestApi", "DeleteBackup", "DeleteAlarms", "DeleteItem", "DeleteAlias",
    "DeleteMetricFilter", "DeleteIntegration", "DeleteStage",
}  # fmt: skip
DELETE_STEPS = ("delete-functions", "delete-routes", "delete-tables")


class CallRecorder:
    """A botocore before-call hook on every client the engine uses: records each call, and at a
    destructive one checks the journal on disk (the running step's gate is GO) and, for a
    table, that its backup is AVAILABLE right now."""

    def __init__(self, journal: Path, engine_runbook: Any, backups: Any) -> None:
        self.journal = journal
        self.runbook = engine_runbook
        self.backups = backups  # a client outside the hook
        self.calls: list[str] = []
        self.destructive: list[str] = []
        self.violations: list[str] = []

    def __call__(self, model: Any = None, params: Any = None, **_: Any) -> None:
        if model is None:
            return
        self.calls.append(model.name)
        if model.name not in DESTRUCTIVE:
            return
        what = f"{model.name}({params.get('TableName') or params.get('FunctionName') or ''})"
        self.destructive.append(what)
        try:
            self._check(model.name, params, what)
        except Exception as exc:  # a hook must not fail the step: record it instead
            self.violations.append(f"guard error at {what}: {exc!r}")

    def _check(self, name: str, params: Any, what: str) -> None:
        journal = JournalStore(self.journal).load()
        running = [s for s in self.runbook.steps if s.id in journal.steps
                   and journal.steps[s.id].status == "running"]  # fmt: skip
        if not running:
            self.violations.append(f"{what} with no step running")
            return
        gate = running[0].requires_gate
        if not gate or gate not in journal.gates or journal.gates[gate].decision != "GO":
            self.violations.append(f"{what} in {running[0].id} without a GO on {gate}")
        if name == "DeleteTable":
            backups = self.backups.list_backups(TableName=params["TableName"])
            if not any(b["BackupStatus"] == "AVAILABLE" for b in backups["BackupSummaries"]):
                self.violations.append(f"{what} without an AVAILABLE backup")


@pytest.fixture
def console_world(aws: Connection, tmp_path: Path) -> tuple[Engine, CallRecorder]:
    """The engine a console would open on the seeded world, every client hooked."""
    engine = seeded_engine(aws, tmp_path / "j.toml", RUNBOOK, "world-cs", time_scale=1e6)
    recorder = CallRecorder(engine.store.path, engine.runbook, aws.session.client("dynamodb"))
    hooked: set[int] = set()

    def clients(service: str) -> Any:
        made = aws.client(service)  # the cached client of each service
        if id(made) not in hooked:
            made.meta.events.register("before-call", recorder)
            hooked.add(id(made))
        return made

    engine.clients = clients  # every client the engine's steps and checks get
    env = aws.client("lambda").get_function_configuration(FunctionName="cs-legacy-fn")
    assert env["Environment"]["Variables"]["API_SIGNING_SECRET"] == SECRET  # planted
    recorder.calls.clear()
    return engine, recorder


class Screens:
    """The text of every screen the console showed: what was on the terminal, plus every line
    of its logs, panels and lists (what scrolls out of sight too)."""

    def __init__(self) -> None:
        self.seen: dict[str, list[str]] = {}

    def capture(self, app: RunbookApp) -> str:
        width, height = app.size
        console = Console(
            width=width, height=height, file=io.StringIO(), force_terminal=True,
            color_system="truecolor", record=True, legacy_windows=False, safe_box=False,
        )  # fmt: skip
        console.print(
            app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
        )
        parts = [console.export_text(styles=False)]
        for screen in app.screen_stack:
            for widget in screen.query("*"):
                if isinstance(widget, RichLog):
                    parts += [strip.text for strip in widget.lines]
                elif isinstance(widget, Static):
                    parts.append(str(widget.render()))
                elif isinstance(widget, OptionList):
                    parts += [str(o.prompt) for o in widget.options]
        text = "\n".join(parts)
        self.seen.setdefault(type(app.screen).__name__, []).append(text)
        return text

    def text(self) -> str:
        return "\n".join(t for texts in self.seen.values() for t in texts)


async def roll_back(pilot: Any, app: RunbookApp, screens: Screens, confirm: str) -> None:
    """`b` on the selected phase, the rollback screen read, the confirmation typed."""
    await pilot.press("b")
    await pilot.pause()
    assert isinstance(app.screen, RollbackScreen)
    screens.capture(app)
    await type_text(pilot, confirm)
    await pilot.press("enter")
    await settle(pilot)


def journal_of(engine: Engine) -> Any:
    return JournalStore(engine.store.path).load()


async def to_the_gate(pilot: Any, app: RunbookApp, engine: Engine, screens: Screens) -> None:
    """r, then acknowledge the manual step (a), then r: the run waits at gate-phase2."""
    await pilot.press("r")
    await settle(pilot)
    screens.capture(app)
    assert engine.waiting() == NodeRef.step("team-check")
    await pilot.press("a")
    await pilot.pause()
    assert isinstance(app.screen, TextPrompt)
    screens.capture(app)
    await type_text(pilot, "flags live")
    await pilot.press("enter")
    await pilot.press("r")
    await settle(pilot)
    assert engine.waiting() == NodeRef.gate("gate-phase2")


@pytest.mark.slow
async def test_no_console_path_reaches_a_destructive_step_without_go_or_backup(
    console_world: tuple[Engine, CallRecorder],
) -> None:
    engine, recorder = console_world
    screens = Screens()
    app = RunbookApp(engine, greet=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screens.capture(app)
        await to_the_gate(pilot, app, engine, screens)
        screens.capture(app)

        # without a GO: the run key, the acknowledge key, GO (disabled), NO-GO, the rollbacks
        for key in ("r", "a", "r"):
            await pilot.press(key)
            await settle(pilot)
        await pilot.press("g")
        await settle(pilot)
        assert isinstance(app.screen, GateScreen)
        screens.capture(app)
        await pilot.press("y")  # an item is not met: GO is disabled
        await settle(pilot)
        assert isinstance(app.screen, GateScreen)
        await pilot.press("o")  # GO with override, cancelled: nothing recorded
        await pilot.pause()
        assert isinstance(app.screen, TextPrompt)
        await pilot.press("escape")
        await pilot.press("n")
        await pilot.pause()
        await type_text(pilot, "not approved yet")
        await pilot.press("enter")
        await settle(pilot)
        assert journal_of(engine).gates["gate-phase2"].decision == "NO-GO"
        assert not isinstance(app.screen, GateScreen)
        await pilot.press("r")
        await settle(pilot)
        # the rollback of the gate's phase (destructive: typed), confirmed, then run again
        await roll_back(pilot, app, screens, "phase2")
        await pilot.press("r")
        await settle(pilot)
        # the rollback of phase 1 (flags back), then through phase 1 again to the gate
        app.query_one("#timeline").select_ref(("step", "deprecate-legacy"))
        await pilot.pause()
        await roll_back(pilot, app, screens, "yes")
        assert journal_of(engine).rollbacks[-1].status == "done"
        app.query_one("#timeline").select_ref(None)  # type: ignore[arg-type]
        await to_the_gate(pilot, app, engine, screens)
        # every other screen, while waiting: the logs, the keys
        for key, screen in (("l", LogScreen), ("L", LogScreen), ("question_mark", KeysScreen)):
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, screen)
            screens.capture(app)
            await pilot.press("escape")
            await pilot.pause()

    assert recorder.calls, "the hook saw no call"
    assert recorder.destructive == [], recorder.destructive
    saved = journal_of(engine)
    assert all(saved.step(s).status == "pending" for s in DELETE_STEPS)

    # the greeting of a console opened again: resume (r) opens the gate; no GO there
    app = RunbookApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ResumeScreen)
        screens.capture(app)
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, GateScreen)
        await pilot.press("escape")
        await pilot.press("r")
        await settle(pilot)
        assert recorder.destructive == [], recorder.destructive

        # a GO, then each destructive step is confirmed by typing its phase (escape declines)
        await pilot.press("g")
        await settle(pilot)
        await pilot.press("down", "space")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert journal_of(engine).gates["gate-phase2"].decision == "GO"
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, TypedConfirm)
        screens.capture(app)
        await pilot.press("escape")
        await settle(pilot)
        assert recorder.destructive == [], recorder.destructive
        await pilot.press("r")
        await settle(pilot)
        for _ in DELETE_STEPS[:2]:  # functions (and log groups), then routes
            assert isinstance(app.screen, TypedConfirm)
            await type_text(pilot, "phase2")
            await pilot.press("enter")
            await settle(pilot)  # the run stops short of the next one and asks again
            screens.capture(app)
        assert journal_of(engine).step("delete-routes").status == "done"
        assert journal_of(engine).step("final-backups").status == "done"
        deleted_before_tables = list(recorder.destructive)

        # the final backup is AVAILABLE; it vanishes before the table's deletion is confirmed
        assert isinstance(app.screen, TypedConfirm)
        arn = journal_of(engine).step("final-backups").cursors["backups"]["cs-legacy"]["arn"]
        recorder.backups.delete_backup(BackupArn=arn)
        await type_text(pilot, "phase2")
        await pilot.press("enter")
        await settle(pilot)
        screens.capture(app)
        failed = journal_of(engine).step("delete-tables")
        assert failed.status == "failed" and "not deleted" in (failed.error or ""), failed
        assert recorder.destructive == deleted_before_tables  # no DeleteTable sent
        for key, screen in (("L", LogScreen), ("question_mark", KeysScreen)):
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, screen)
            screens.capture(app)
            await pilot.press("escape")
            await pilot.pause()

    # there were destructive calls (the hook works), each behind the GO
    assert any(c.startswith("DeleteFunction") for c in recorder.destructive), recorder.destructive
    assert any(c.startswith("DeleteLogGroup") for c in recorder.destructive), recorder.destructive
    assert any(c.startswith("DeleteResource") for c in recorder.destructive), recorder.destructive
    assert not any(c.startswith("DeleteTable") for c in recorder.destructive)
    assert recorder.violations == []

    # the planted secret: on no screen; the screens were read (they name the functions)
    shown = screens.text()
    every_screen = {"MainScreen", "GateScreen", "LogScreen", "KeysScreen", "RollbackScreen",
                    "ResumeScreen", "TextPrompt", "TypedConfirm"}  # fmt: skip
    assert every_screen <= set(screens.seen), set(screens.seen)
    assert "cs-legacy-fn" in shown and "gate-phase2" in shown
    assert SECRET not in shown
