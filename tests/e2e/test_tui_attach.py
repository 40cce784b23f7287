"""The console attached to a detached engine (`runbook attach`, and `runbook` while one runs):
progress and logs arrive through the control socket, the keys become socket commands, and
leaving the console never stops the engine. A real engine process on the embedded world (see
tests/e2e/test_detach.py); no sleeps as waits: every wait polls an observable condition."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from textual.widgets import Input

from engine.control.client import RemoteEngine
from engine.control.job_loop import DetachedRun
from engine.control.paths import socket_path
from engine.control.server import ControlServer
from engine.core.outcome import BadRequest, Outcome
from engine.core.views import RunState
from engine.rehearsal.embedded import record_path_for, stop_world
from engine.session.workspace import Workspace, WorkspaceOptions
from engine.state.journal import JournalStore
from engine.state.lock import is_locked
from tests.support.detach import (
    MIGRATE,
    RUNBOOK,
    TABLE,
    alive,
    common,
    engine_pids,
    last_status,
    runbook,
    start_detached,
    step,
    until,
)
from tests.support.paths import MINI_RUNBOOK, REPO
from tests.support.pilot_waits import screen_text, until_shown
from tests.support.world import seeded_engine
from tui.app import RunbookApp
from tui.console import hand_over
from tui.messages import WorkEnded
from tui.screens.gate import GateScreen
from tui.screens.prompts import TextPrompt, TypedConfirm, YesNo
from tui.screens.throttle import ThrottleScreen
from tui.widgets.table_progress import ProgressPanel


@pytest.fixture
def journal(tmp_path: Path):
    """The journal; afterwards no engine and no embedded world is left behind (a failing test
    included)."""
    path = tmp_path / "j.toml"
    yield path
    for pid in engine_pids(path):
        os.kill(pid, signal.SIGKILL)
    stop_world(record_path_for(path))


def attached_app(journal_path: Path) -> RunbookApp:
    """What `runbook attach` builds: a read-only engine for the runbook, the socket for the rest."""
    ws = Workspace(WorkspaceOptions(runbook=RUNBOOK, journal=journal_path))
    remote = RemoteEngine(socket_path(journal_path))
    return RunbookApp(ws.open_read_only(), follow=ws.reload, remote=remote)


def status_of(app: RunbookApp) -> str:
    return str(app.main.query_one("#status").render())


def topbar_of(app: RunbookApp) -> str:
    return str(app.main.query_one("#topbar").render())


def shown_done(app: RunbookApp) -> int:
    row = app.main.query_one(ProgressPanel).rows.get(TABLE)
    return row.done if row is not None else 0


def footer_keys(app: RunbookApp) -> dict[str, tuple[int, int]]:
    """The footer's keys as drawn: key -> (first column, last column + 1)."""
    from textual.widgets._footer import FooterKey

    return {
        k.key_display or k.key: (k.region.x, k.region.right)
        for k in app.screen.query(FooterKey)
        if k.region.width
    }


async def throttle_with_keys(pilot, app: RunbookApp, journal: Path) -> None:
    """t opens the throttle box (footer and ? say so, at 80x24); a bad value is one line in
    the box and nothing is sent; good values reach the engine, the journal and the status."""

    def drawn() -> dict[str, tuple[int, int]] | None:  # the footer may be mid-recompose
        keys = footer_keys(app)
        return keys if {"t", "p", "q", "r"} <= set(keys) else None

    keys = await until_shown(pilot, drawn, 30, "the footer drawn with r, p, t and q")
    assert max(right for _, right in keys.values()) <= 80, str(
        sorted(keys.items(), key=lambda kv: kv[1])
    )
    footer = [strip.text for strip in app.screen._compositor.render_strips()][-1]
    assert "Throttleg" not in footer and "Throttle g" in footer, footer  # issue 20, item 16
    assert "t  Throttle: Detached engine: set writes in flight" in app.main.keys_text()
    await pilot.press("t")
    box = await until_shown(
        pilot, lambda: app.screen if isinstance(app.screen, ThrottleScreen) else None, 5, "box"
    )
    assert box.query_one("#rate", Input).value == "20"  # what the engine applies now
    await pilot.press(*"lots", "enter")
    error = str(box.query_one("#throttle-error").render())
    assert error.startswith("Not applied: writes in flight: a whole number") and "'lots'" in error
    assert app.screen is box
    assert RemoteEngine(socket_path(journal)).status().control.throttle.in_flight is None
    await pilot.press("ctrl+a", "ctrl+k", "4", "tab", "ctrl+a", "ctrl+k", *"0", "enter")
    assert "items/s: a number above 0" in str(box.query_one("#throttle-error").render())
    await pilot.press("ctrl+a", "ctrl+k", *"10", "tab", *"2", "enter")
    assert "capacity share: above 0 and at most 1" in str(box.query_one("#throttle-error").render())
    await pilot.press("ctrl+a", "ctrl+k", *"50%", "enter")
    await until_shown(pilot, lambda: app.screen is not box, 30, "the box to close")
    applied = lambda: app.driver.throttle_state.in_flight == 4  # noqa: E731
    await until_shown(pilot, applied, 30, "the engine to apply it")
    control = RemoteEngine(socket_path(journal)).status().control.throttle
    assert control.in_flight == 4 and control.rate == 10 and control.capacity_share == 0.5
    await until_shown(
        pilot,
        lambda: "THROTTLED 10 items/s, 4 in flight, 50% of capacity" in status_of(app),
        5,
        "the status line",
    )
    audit = [a.what for a in JournalStore(journal).load().audit]
    assert "throttle: rate 10 items/s, in-flight 4, capacity share 50%" in audit


async def test_attach_shows_progress_pauses_quits_and_stops(capsys, journal: Path) -> None:
    pid = start_detached(capsys, journal, "--rate", "20")  # ~15 s of work
    until(lambda: step(journal, MIGRATE)[0] == "running", 30, "the migration to start")

    # attach: progress arrives from the socket; t throttles; p pauses; q leaves it running
    app = attached_app(journal)
    assert app.driver.remote
    async with app.run_test(size=(80, 24)) as pilot:
        assert f"ATTACHED pid {pid}" in topbar_of(app)
        first = await until_shown(pilot, lambda: shown_done(app), 10, "progress on screen")
        await until_shown(pilot, lambda: shown_done(app) > first, 10, "progress to move")
        assert "RUNNING migrate-expenses" in status_of(app)
        assert app.main.check_action("faster", ()) is True  # the rehearsal clock: a socket cmd
        await throttle_with_keys(pilot, app, journal)
        await pilot.press("p")
        await until_shown(pilot, lambda: app.driver.pause_state == "paused", 10, "the pause")
        await until_shown(
            pilot,
            lambda: "PAUSED: no writes, waits stand still" in status_of(app),
            5,
            "PAUSED shown",
        )
        held = RemoteEngine(socket_path(journal)).status().control.pause
        assert held == "paused"
        await pilot.press("q")
        await until_shown(pilot, lambda: not app.is_running, 30, "the console to quit")
    assert alive(pid) and is_locked(journal) is not None  # quitting never stops the engine
    assert "runs on" in app.farewell() and str(pid) in app.farewell()
    audit = " ".join(a.what for a in JournalStore(journal).load().audit)
    assert "paused the run" in audit

    # attach again: r resumes the paused engine; s stops it at a checkpoint
    app = attached_app(journal)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.driver.paused and app.main.check_action("run", ()) is True
        held_at = step(journal, MIGRATE)[1]
        await pilot.press("r")
        await until_shown(pilot, lambda: shown_done(app) > held_at, 10, "progress after r")
        await pilot.press("s")  # a detached engine asks first: it would exit
        await until_shown(pilot, lambda: isinstance(app.screen, YesNo), 10, "the question")
        assert alive(pid) and "Stop the detached engine?" in screen_text(app)
        await pilot.press("y")
        await until_shown(pilot, lambda: app.engine_left, 15, "the engine to say it ended")
        assert "ended: interrupted" in app.engine_left
        # the console now follows the journal, read-only: the step was checkpointed mid-way
        await until_shown(
            pilot, lambda: app.snapshot.state is RunState.INTERRUPTED, 10, "INTERRUPTED shown"
        )
        assert "INTERRUPTED migrate-expenses" in status_of(app)
        assert app.main.check_action("run", ()) is False  # no engine to command: hidden
        await pilot.press("q")
    until(lambda: not alive(pid), 10, "the engine to exit")
    status, done = step(journal, MIGRATE)
    assert status == "running" and held_at < done < 300  # interrupted at a checkpoint
    assert not socket_path(journal).exists()


async def test_d_hands_the_run_to_a_detached_engine_and_attaches(journal: Path) -> None:
    """A console driving the run itself: D (confirmed) lets go of the journal, starts
    `run --detach` as the CLI does, and attaches; the run then goes on in that engine,
    and the console follows it to the end through the socket."""
    ws = Workspace(WorkspaceOptions(runbook=RUNBOOK, journal=journal))
    ws.acquire("console")
    try:
        app = RunbookApp(ws.open(create=True), follow=ws.reload, handoff=lambda: hand_over(ws))
        async with app.run_test(size=(80, 24)) as pilot:
            assert not app.driver.remote and app.main.check_action("detach", ()) is True
            await pilot.press("D")
            await until_shown(pilot, lambda: isinstance(app.screen, YesNo), 30, "the question")
            await pilot.press("y")
            await until_shown(pilot, lambda: app.driver.remote, 60, "the console to attach")
            pid = app.driver.pid  # type: ignore[union-attr]
            holder = is_locked(journal)
            assert holder is not None and holder.pid == pid and "detach" in holder.operation
            assert f"ATTACHED pid {pid}" in topbar_of(app)
            assert app.main.check_action("detach", ()) is False  # attached: nothing to hand
            # the detached engine runs the plan; its news reach this console
            await until_shown(pilot, lambda: app.engine_left, 60, "the engine to finish")
            assert "ended: done" in app.engine_left
            assert app.snapshot.step(MIGRATE).status == "done"
            await pilot.press("q")
    finally:
        ws.release()
    until(lambda: is_locked(journal) is None, 10, "the engine to let go of the journal")
    assert step(journal, MIGRATE) == ("done", 300)


def screen(tmux: list[str], name: str) -> str:
    """The terminal's text; -J joins lines the terminal wrapped."""
    capture = [*tmux, "capture-pane", "-p", "-J", "-t", name]
    return subprocess.run(capture, capture_output=True, text=True).stdout


def consoles_in_a_terminal(journal: Path, pid: int) -> None:
    """`runbook attach` and plain `runbook`, each in tmux at 80x24: attached to the engine;
    q leaves, says the engine runs on, and it does."""
    tmux = ["tmux", "-L", f"attach-{os.getpid()}"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = " ".join(common(journal))
    try:
        for sub in ("attach", ""):
            name = f"console-{sub or 'none'}"
            command = (
                f"TEXTUAL_ANIMATIONS=none {sys.executable} -m runbook_entry {sub} {args}; "
                "echo EXITED=$?; cat"
            )
            subprocess.run(
                [*tmux, "new-session", "-d", "-s", name, "-x", "80", "-y", "24", command],
                check=True,
                env=env,
            )
            shown = lambda text: text in screen(tmux, name)  # noqa: B023, E731
            until(lambda: shown(f"ATTACHED pid {pid}"), 40, f"`runbook {sub}` to attach")  # noqa: B023
            until(lambda: shown("RUNNING migrate-expenses"), 10, "the run on screen")  # noqa: B023
            subprocess.run([*tmux, "send-keys", "-t", name, "q"], check=True)
            until(lambda: shown("EXITED="), 20, "the console to exit")  # noqa: B023
            said = screen(tmux, name)
            assert "EXITED=0" in said and f"engine (pid {pid}) runs on" in said, said
            assert alive(pid), "leaving the attached console stopped the engine"
        # the terminal goes away under an attached console (SIGHUP): it leaves, the engine stays
        command = f"TEXTUAL_ANIMATIONS=none exec {sys.executable} -m runbook_entry {args}"
        new = [*tmux, "new-session", "-d", "-s", "hangup", "-x", "80", "-y", "24", command]
        subprocess.run(new, check=True, env=env)
        until(lambda: f"ATTACHED pid {pid}" in screen(tmux, "hangup"), 40, "attached again")
        panes = [*tmux, "list-panes", "-t", "hangup", "-F", "#{pane_pid}"]
        console = int(subprocess.run(panes, capture_output=True, text=True).stdout.split()[0])
        subprocess.run([*tmux, "kill-session", "-t", "hangup"], check=True)
        until(lambda: not alive(console), 15, "the console to leave on its hang-up")
        assert alive(pid), "a lost terminal of an attached console stopped the engine"
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)


async def test_plain_runbook_attaches_and_a_dead_engine_is_said(capsys, journal: Path) -> None:
    """In a real terminal (tmux), `runbook attach` and `runbook` open the attached console and
    leave the engine running; then the engine dies (SIGKILL, no goodbye on the stream): an
    attached console says so in one line and follows the journal read-only."""
    # slow while three consoles start in a terminal (the engine must outlive them however
    # loaded the machine: 300 items at 1/s), then fast for the rest
    pid = start_detached(capsys, journal, "--rate", "1")
    if shutil.which("tmux") is not None:
        consoles_in_a_terminal(journal, pid)
    assert runbook(capsys, "throttle", "--rate", "50", *common(journal))[0] == 0
    app = attached_app(journal)
    async with app.run_test(size=(80, 24)) as pilot:
        await until_shown(pilot, lambda: shown_done(app), 20, "progress on screen")
        os.kill(pid, signal.SIGKILL)
        await until_shown(pilot, lambda: app.engine_left, 10, "the console to notice")
        assert app.engine_left == (
            f"the detached engine (pid {pid}) is gone; `runbook` resumes from its checkpoint"
        )
        await until_shown(pilot, lambda: "its driver left" in status_of(app), 10, "the view")
        assert app.read_only and app.main.check_action("stop", ()) is False
        await pilot.press("q")
    assert app.farewell() == app.engine_left


def test_the_socket_serves_what_the_console_needs(aws, tmp_path: Path) -> None:
    """untick, evaluate (the gate screen's live evidence) and clock (+/-) through a real
    control socket, as the attached console sends them; each lands in the journal."""
    journal = tmp_path / "j.toml"
    sock = socket_path(journal)
    engine = seeded_engine(aws, journal, MINI_RUNBOOK, "world-attach", 100.0)
    server = ControlServer(sock, journal, DetachedRun(engine, socket=str(sock)))
    server.start()
    try:
        remote = RemoteEngine(sock)
        remote.tick("gate-phase2", "team-ready", "al")
        assert "team-ready" in JournalStore(journal).load().gates["gate-phase2"].ticks
        remote.untick("gate-phase2", "team-ready", "al")
        assert "team-ready" not in JournalStore(journal).load().gates["gate-phase2"].ticks
        remote.evaluate_gate("gate-phase2")  # backups not taken yet: measured, and failing
        evidence = JournalStore(journal).load().gates["gate-phase2"].evidence
        assert evidence["backups-verified"].ok is False and evidence["backups-verified"].at
        remote.set_time_scale(600.0, "al")
        assert JournalStore(journal).load().run.time_scale == 600.0
        assert engine.options.time_scale == 600.0  # the engine's clock follows now
        with pytest.raises(BadRequest, match="no gate"):
            remote.evaluate_gate("no-such-gate")
    finally:
        server.close()


async def test_gate_and_ack_keys_drive_the_detached_engine(capsys, journal: Path) -> None:
    """The mini runbook in a detached engine: g opens the gate (evidence measured by the
    engine), space ticks, y decides GO, a acknowledges the manual step; the engine carries
    each on and finishes; the journal has it all, by the console's operator."""
    args = ["--runbook", str(MINI_RUNBOOK), "--journal", str(journal)]
    code, _, err = runbook(capsys, "run", "--detach", "--yes", "--operator", "al", *args)
    assert code == 0, err
    ws = Workspace(WorkspaceOptions(runbook=MINI_RUNBOOK, journal=journal, operator="al"))
    app = RunbookApp(
        ws.open_read_only(), follow=ws.reload, remote=RemoteEngine(socket_path(journal))
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await until_shown(
            pilot, lambda: "WAITING at gate gate-phase2" in status_of(app), 30, "the gate"
        )
        await pilot.press("g")
        gate = await until_shown(
            pilot, lambda: app.screen if isinstance(app.screen, GateScreen) else None, 5, "gate"
        )
        await until_shown(pilot, lambda: gate.item_ok("backups-verified"), 20, "evidence")
        await pilot.press("down", "space")
        await until_shown(pilot, lambda: gate.item_ok("team-ready"), 10, "the tick")
        await until_shown(pilot, lambda: gate.check_action("go", ()) is True, 10, "GO offered")
        await pilot.press("y")
        await until_shown(
            pilot, lambda: "WAITING at step handover" in status_of(app), 30, "the manual step"
        )
        await pilot.press("a")
        await until_shown(pilot, lambda: isinstance(app.screen, TextPrompt), 30, "the prompt")
        await pilot.press("enter")
        await until_shown(pilot, lambda: app.engine_left, 30, "the engine to finish")
        assert "ended: done" in app.engine_left
        await pilot.press("q")
    saved = JournalStore(journal).load()
    assert saved.gates["gate-phase2"].decision == "GO"
    assert saved.gates["gate-phase2"].ticks["team-ready"].by == "al"
    assert saved.steps["handover"].acked_by == "al"
    assert all(s.status == "done" for s in saved.steps.values())


def two_destructive_steps(tmp_path: Path) -> Path:
    """The detach runbook with two destructive steps after the migration (backups, marked
    destructive so that the engine must ask before each)."""
    extra = "".join(
        f'\n[[steps]]\nid = "{sid}"\nphase = "phase1"\ntitle = "Destructive {sid}"\n'
        f'slot = "09:30-09:40"\naction = "backup_tables"\ndestructive = true\n'
        f'params = {{ tables = ["{TABLE}"], name_prefix = "{sid}" }}\n'
        for sid in ("step-a", "step-b")
    )
    text = RUNBOOK.read_text()
    head, tail = text.split("[embedded]", 1)
    path = tmp_path / "two-destructive.toml"
    path.write_text(head + extra + "\n[embedded]" + tail)
    return path


async def test_a_confirmation_consents_to_that_step_only(capsys, journal: Path) -> None:
    """A detached engine started without --yes stops at each destructive step. An attached
    console confirms step-a (typed phase id): the engine runs step-a, then stops again at
    step-b and the console asks again, as a local console does; step-b runs once confirmed."""
    book = two_destructive_steps(journal.parent)
    args = ["--runbook", str(book), "--journal", str(journal)]
    code, _, err = runbook(capsys, "run", "--detach", "--operator", "al", *args)
    assert code == 0, err
    remote = RemoteEngine(socket_path(journal))
    declined = lambda: last_status(remote) == "declined"  # noqa: E731
    until(declined, 60, "the engine to stop short of step-a")
    assert remote.status().control.activity == "idle"
    saved = JournalStore(journal).load()
    assert saved.steps[MIGRATE].status == "done" and "step-a" not in saved.steps
    log = journal.with_name(journal.stem + ".log").read_text()  # nobody has answered yet
    assert "step-a: waiting for confirmation" in log and "not confirmed" not in log
    for wrong in ("mapping", "no-such-step"):  # only a destructive step can be confirmed
        with pytest.raises(BadRequest, match="not a destructive step"):
            remote.resume("al", approve=wrong)

    ws = Workspace(WorkspaceOptions(runbook=book, journal=journal, operator="al"))
    app = RunbookApp(ws.open_read_only(), follow=ws.reload, remote=remote)
    async with app.run_test(size=(80, 24)) as pilot:
        await until_shown(pilot, lambda: app.main.check_action("run", ()), 10, "r offered")
        await pilot.press("r")
        await until_shown(pilot, lambda: isinstance(app.screen, TypedConfirm), 30, "the question")
        assert "step-a" in str(app.screen.query_one(".dialog-text").render())
        await pilot.press(*"phase1", "enter")
        # the engine's "stopped short of step-a", from before the r, arrives late: the step
        # this console has just confirmed is not asked about again
        app.post_message(WorkEnded("engine", Outcome("paused"), None))
        await pilot.pause()
        await pilot.pause()
        asked = [s for s in app.screen_stack if isinstance(s, TypedConfirm)]
        assert not [s for s in asked if s.step == "step-a"], "step-a asked twice"
        # step-a runs; the engine stands still before step-b and the console asks again
        await until_shown(
            pilot,
            lambda: (
                isinstance(app.screen, TypedConfirm)
                and "step-b" in str(app.screen.query_one(".dialog-text").render())
            ),
            60,
            "the question for step-b",
        )
        saved = JournalStore(journal).load()
        assert saved.steps["step-a"].status == "done"
        assert "step-b" not in saved.steps or saved.steps["step-b"].status == "pending"
        control = remote.status().control
        assert control.activity == "idle" and control.last and control.last.status == "declined"
        assert "step-b waits for confirmation" in control.last.message
        assert control.consent is False and control.approved is None
        # confirmed in turn, step-b runs and the engine finishes the run
        await pilot.press(*"phase1", "enter")
        await until_shown(pilot, lambda: app.engine_left, 60, "the engine to finish")
        assert "ended: done" in app.engine_left
        await pilot.press("q")
    saved = JournalStore(journal).load()
    assert saved.steps["step-b"].status == "done"
    audit = [a.what for a in saved.audit if "confirmed destructive step" in a.what]
    assert audit == [
        "confirmed destructive step step-a (that step only)",
        "confirmed destructive step step-b (that step only)",
    ]
    assert all(a.who == "al" for a in saved.audit if "confirmed destructive" in a.what)


async def test_a_dialog_closes_when_its_step_is_confirmed_elsewhere(capsys, journal: Path):
    """Issue 20, item 12: the console asks about step-a; meanwhile `runbook resume --yes`
    consents from another terminal and the engine runs on. The question is settled: the dialog
    closes and says why, instead of waiting for a phase typed into nothing."""
    book = two_destructive_steps(journal.parent)
    args = ["--runbook", str(book), "--journal", str(journal)]
    code, _, err = runbook(capsys, "run", "--detach", "--operator", "al", *args)
    assert code == 0, err
    remote = RemoteEngine(socket_path(journal))
    declined = lambda: last_status(remote) == "declined"  # noqa: E731
    until(declined, 60, "the engine to stop short of step-a")
    ws = Workspace(WorkspaceOptions(runbook=book, journal=journal, operator="al"))
    app = RunbookApp(ws.open_read_only(), follow=ws.reload, remote=remote)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await until_shown(pilot, lambda: app.main.check_action("run", ()), 10, "r offered")
        await pilot.press("r")
        await until_shown(pilot, lambda: isinstance(app.screen, TypedConfirm), 30, "the question")
        dialog = app.screen
        # the engine's own "stopped short" arrives while the operator's question is open:
        # no second dialog is stacked on it (keys typed into the top one would be lost)
        app.post_message(WorkEnded("engine", Outcome("paused"), None))
        await pilot.pause()
        await pilot.pause()
        assert [type(s) for s in app.screen_stack].count(TypedConfirm) == 1
        await pilot.press(*"pha")  # the operator is half-way through typing the phase id
        remote.resume("bo", consent=True)  # another terminal answers for every step
        await until_shown(pilot, lambda: dialog.settled, 60, "the dialog to settle")
        assert "step-a was confirmed elsewhere (" in screen_text(app)
        assert "enter or esc closes" in screen_text(app)
        # the rest of the phase id lands in the settled dialog, not on the main screen's keys
        # (s would stop the engine, p pause it, a acknowledge)
        await pilot.press(*"se1")
        assert app.screen is dialog
        await pilot.press("enter")
        await until_shown(pilot, lambda: app.screen is app.main, 10, "the dialog to close")
        await until_shown(pilot, lambda: app.engine_left, 60, "the engine to finish")
        await pilot.press("q")
    saved = JournalStore(journal).load()
    assert saved.steps["step-a"].status == saved.steps["step-b"].status == "done"
    assert not [a.what for a in saved.audit if "stopped" in a.what or "paused" in a.what]
