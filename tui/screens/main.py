"""The main screen: timeline, detail, progress, error rate, step log, status line; its keys.

It renders the run's snapshot (`RunbookApp.snapshot`) and nothing else of the engine's state;
its commands go to the engine through the app's driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, RichLog, Static, Tree

from engine.events import Alert, LogLine, MetricSample, Progress, StepStarted, as_log_line
from engine.rehearsal import clock_label, next_scale
from engine.runner import BadRequest, CommandRefused, Outcome
from engine.snapshot import AlertView, NodeRef, RunSnapshot, RunState
from tui.lines import next_gate_line, status_text, topbar_text
from tui.logbook import LogEntry, entry_of, render_entry
from tui.messages import EngineEvent, WorkEnded
from tui.screens.gate import GateScreen
from tui.screens.keys import KeysScreen, key_lines
from tui.screens.log import LogScreen
from tui.screens.prompts import TextPrompt, TypedConfirm, YesNo
from tui.screens.rollback import RollbackScreen, preview_text
from tui.screens.throttle import ThrottleScreen
from tui.widgets.banners import AlertBanner, StatusLine
from tui.widgets.error_rate import ErrorRateStrip
from tui.widgets.step_detail import StepDetail
from tui.widgets.table_progress import ProgressPanel
from tui.widgets.timeline import Timeline

if TYPE_CHECKING:
    from tui.app import RunbookApp

MIN_WIDTH, MIN_HEIGHT = 80, 24
# a detached engine's pause: writes stop at a batch boundary, waits (watch windows, polls)
# stand still, their plan time with them, until r resumes
PAUSE_LINES = {
    "pausing": " PAUSING: the batch under way finishes · r resumes ·",
    "paused": " PAUSED: no writes, waits stand still · r resumes ·",
}


def throttle_note(throttle: dict) -> str:
    """A detached engine's throttle, short, for the end of the status line ('' if none)."""
    parts = []
    if throttle.get("rate"):
        parts.append(f"{throttle['rate']:g} items/s")
    if throttle.get("in_flight"):
        parts.append(f"{throttle['in_flight']} in flight")
    return f" · THROTTLED {', '.join(parts)}" if parts else ""


class MainScreen(Screen[None]):
    LOGS = Binding.Group("Logs")
    # attached: p holds the run, t sets its pace (gh-ost's sense of throttle); one footer
    # entry keeps every key visible at 80 columns
    THROTTLE = Binding.Group("Throttle")
    BINDINGS = [
        Binding("r", "run", "Run/resume", tooltip="Run steps until a gate or manual step"),
        Binding("s", "stop", "Stop", tooltip="Checkpoint and stop after the current batch"),
        Binding(
            "p",
            "pause",
            "Pause",
            tooltip="Detached engine: hold the run at its next batch",
            group=THROTTLE,
        ),
        Binding(
            "t",
            "throttle",
            "Throttle",
            tooltip="Detached engine: set writes in flight and items/s while it runs",
            group=THROTTLE,
        ),
        Binding("g", "gate", "Gate", tooltip="Open the next go/no-go gate (or the selected one)"),
        Binding("a", "ack", "Ack", tooltip="Acknowledge the manual step the run waits at"),
        Binding("b", "rollback", "Rollback", tooltip="Roll back the selected step's phase"),
        Binding("l", "log", "Run log", tooltip="The whole run's log, full screen", group=LOGS),
        Binding(
            "L", "step_log", "Step log", tooltip="The selected step's log, full screen", group=LOGS
        ),
        Binding(
            "D",
            "detach",
            "Detach",
            tooltip="Hand the run to a background engine that outlives this console",
            show=False,  # in ? (the footer keeps q visible at 80 columns)
        ),
        Binding("x", "dismiss_alert", "Hide alert", tooltip="Hide the alert banner", show=False),
        Binding("plus", "faster", "Faster", tooltip="Rehearsal clock one step faster", show=False),
        Binding("minus", "slower", "Slower", tooltip="Rehearsal clock one step slower", show=False),
        Binding("question_mark", "app.toggle_keys", "Keys", tooltip="Every key with what it does"),
        Binding("q", "app.quit_console", "Quit"),
    ]

    app: RunbookApp

    def __init__(self) -> None:
        super().__init__()
        self.selected: NodeRef | None = None  # browsing: the cursor is off what runs now
        self.alerts_seen = 0
        self.ready = False  # composed and mounted: a detached engine's news may come before

    # ---- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        app = self.app
        yield Static(id="topbar")
        yield AlertBanner(id="alert")
        with Horizontal(id="body"):
            yield Timeline(app.engine.runbook, id="timeline")
            with Vertical(id="right"):
                yield StepDetail(id="detail")
                yield ProgressPanel(id="progress", clock=app.ui_clock)
                yield ErrorRateStrip(self._error_rate_limit(), id="errors")
                yield RichLog(id="steplog", wrap=True, markup=False, min_width=20)
        yield StatusLine(id="status")
        yield Footer()
        yield Static(
            f"Terminal too small: need {MIN_WIDTH}x{MIN_HEIGHT}.\n"
            "Enlarge the window; the run is unaffected.",
            id="too-small",
        )

    def _error_rate_limit(self) -> float:
        triggers = [t for t in self.app.engine.runbook.triggers if t.metric == "error_rate"]
        return triggers[0].threshold if triggers else 1.0

    def on_mount(self) -> None:
        snapshot = self.app.snapshot
        self.alerts_seen = len(snapshot.alerts)
        if snapshot.proposed_rollback and snapshot.alerts:
            self.query_one(AlertBanner).show_alert(snapshot.alerts[-1])
        self.watch(self.app, "snapshot", self._on_snapshot, init=False)
        self.refresh_view()
        self._write_step_log()
        self.query_one(Timeline).focus()
        self.call_after_refresh(self._follow_current)
        self.ready = True

    def set_too_small(self, small: bool) -> None:
        self.set_class(small, "too-small")

    def on_resize(self) -> None:
        self.call_after_refresh(self.refresh_view)  # timeline labels fit the new width

    # ---- what the run looks like ------------------------------------------------------------

    @property
    def snapshot(self) -> RunSnapshot:
        return self.app.snapshot

    def current_ref(self) -> NodeRef | None:
        return self.snapshot.current

    def shown_ref(self) -> NodeRef | None:
        return self.selected or self.current_ref()

    def _on_snapshot(self, snapshot: RunSnapshot) -> None:
        if len(snapshot.alerts) > self.alerts_seen:  # a new alert (a viewer sees it too)
            self.alerts_seen = len(snapshot.alerts)
            if snapshot.proposed_rollback or snapshot.state is RunState.RUNNING:
                self.query_one(AlertBanner).show_alert(snapshot.alerts[-1])
        if self.query_one(AlertBanner).shown and snapshot.state is RunState.DONE:
            self.query_one(AlertBanner).clear()
        self.refresh_view()

    def refresh_view(self) -> None:
        snapshot = self.snapshot
        self.query_one(Timeline).refresh_from(snapshot)
        ref = self.shown_ref()
        detail = self.query_one(StepDetail)
        panel = self.query_one(ProgressPanel)
        runbook = self.app.engine.runbook
        if ref and ref.kind == "step":
            view = snapshot.step(ref.id)
            detail.show_step(view, runbook.phase(view.phase).title, next_gate_line(snapshot))
            panel.show(view)
        elif ref and ref.kind == "gate":
            detail.show_gate(snapshot.gate(ref.id), snapshot.waiting == ref)
            panel.show(None)
        else:
            detail.update("Every step is done. Press l for the log; `runbook report` audits it.")
            panel.show(None)
        app = self.app
        driver = app.driver
        attached = f"ATTACHED pid {driver.pid}" if driver.remote else "DRIVING"
        self.query_one("#topbar", Static).update(
            topbar_text(
                snapshot,
                driver.operator,
                app.read_only,
                app.holder,
                view_only=app.view_only,
                driving=attached,
            )
        )
        self.query_one("#topbar").set_class(app.read_only, "read-only")
        status = status_text(snapshot, app.read_only, driver.busy, app.holder)
        if driver.remote and not app.read_only:  # after the state: it must stay in view
            status += throttle_note(driver.throttle_state)  # type: ignore[union-attr]
        if driver.remote and driver.paused and not app.read_only:
            status = PAUSE_LINES.get(driver.pause_state or "", PAUSE_LINES["pausing"]) + status
        self.query_one(StatusLine).update(status)
        # attached, pause and throttle join the keys: the compact footer keeps all of them
        # on 80 columns (a local console's footer stays as it was)
        self.query_one(Footer).compact = driver.remote
        self.refresh_bindings()

    def _write_step_log(self) -> None:
        """The pane shows the lines of the step or gate in view, and only those."""
        log = self.query_one("#steplog", RichLog)
        log.clear()
        ref = self.shown_ref()
        owner = ref.id if ref else "run"
        log.border_title = f"log · {owner}"
        for entry in self.app.log_entries:
            if entry.step == owner:
                log.write(render_entry(entry))

    # ---- engine events ------------------------------------------------------------------------

    @on(EngineEvent)
    def on_engine(self, message: EngineEvent) -> None:
        message.stop()  # handled here; the app re-posted it
        event = message.event
        if isinstance(event, Progress):
            panel = self.query_one(ProgressPanel)
            if self.selected is None or self.selected == NodeRef.step(event.step_id):
                panel.show_step(event.step_id)
                panel.set_progress(
                    event.table,
                    event.done,
                    event.total,
                    event.rate,
                    event.eta_seconds,
                    in_flight=event.in_flight,
                )
            return
        now = self.app.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        if (line := as_log_line(event, now)) is not None:
            self.app.add_log_entry(entry_of(line, now))
        if isinstance(event, LogLine):
            self.app.add_log_entry(entry_of(event, now))
        elif isinstance(event, Alert):
            self.query_one(AlertBanner).show_alert(
                AlertView(
                    trigger=event.trigger_id,
                    step=event.step_id,
                    phase=None,
                    at=None,
                    message=event.message,
                    measured=event.measured,
                    threshold=event.threshold,
                    rollback=event.proposed_rollback,
                    auto_rollback=event.auto_rollback,
                )
            )
            self.app.bell()
        elif isinstance(event, MetricSample) and event.metric == "error_rate":
            self.query_one(ErrorRateStrip).add(event.step_id, event.value)
        elif isinstance(event, StepStarted):
            self.selected = None
            self._write_step_log()
            self._follow_current(NodeRef.step(event.step_id))

    def add_entry(self, entry: LogEntry) -> None:
        """A new log line: into the pane when it belongs to what is in view."""
        ref = self.shown_ref()
        if entry.step == (ref.id if ref else "run"):
            self.query_one("#steplog", RichLog).write(render_entry(entry))

    def work_ended(self, message: WorkEnded) -> None:
        outcome = message.outcome if isinstance(message.outcome, Outcome) else None
        paused = outcome is not None and outcome.status == "paused" and not self.app.quitting
        if message.error is not None:
            self.notify(f"engine error: {message.error}", severity="error", timeout=15)
        elif outcome is not None and not paused:
            self._announce(outcome)
        if message.group == "rollback" and outcome is not None and outcome.status == "done":
            self.query_one(AlertBanner).clear()  # its proposal was carried out
        self.selected = None
        self.refresh_view()
        self._write_step_log()
        self._follow_current()
        if paused:  # the run reached a destructive step: ask, then go on
            self.call_later(self.action_run)

    def _announce(self, outcome: Outcome) -> None:
        severity = {"failed": "error", "declined": "warning", "interrupted": "warning"}.get(
            outcome.status, "information"
        )
        text = outcome.message or outcome.status
        if outcome.waiting:
            text = f"waiting at {outcome.waiting}: {text}"
        self.notify(text, severity=severity, timeout=8)  # type: ignore[arg-type]

    # ---- selection ----------------------------------------------------------------------------

    @on(Tree.NodeHighlighted, "#timeline")
    def _highlighted(self, event: Tree.NodeHighlighted) -> None:
        data = event.node.data
        if data and data[0] in ("step", "gate"):
            ref = NodeRef.of(data)
            # on the current node the view follows the run; elsewhere it stays put
            selected = None if ref == self.current_ref() else ref
            if selected != self.selected or selected is None:
                self.selected = selected
                self.refresh_view()
                self._write_step_log()

    def _follow_current(self, ref: NodeRef | None = None) -> None:
        """Put the timeline's cursor on what runs (or waits) now, unless the operator browses."""
        ref = ref or self.current_ref()
        if self.selected is None and ref:
            self.query_one(Timeline).select_ref(ref.as_tuple())

    # ---- commands --------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        app = self.app
        driving = (
            "run",
            "ack",
            "rollback",
            "stop",
            "faster",
            "slower",
            "pause",
            "detach",
            "throttle",
        )
        if action in driving and app.read_only:
            return False  # hidden, not just dimmed: a viewer has no such keys (and NO_COLOR)
        if action == "detach":  # from a console that drives the engine itself, when idle
            if app.handoff is None or app.driver.remote:
                return False
            return None if app.driver.busy else True
        if action in ("faster", "slower") and app.handing_over:
            return None
        if action in ("faster", "slower"):
            return app.driver.clock_changeable  # a real account stays at real time
        busy = app.driver.busy
        remote = app.driver.remote
        if action == "throttle":  # a detached engine serves it; never a viewer
            return remote and not app.view_only
        if action == "pause":  # only a detached engine pauses (a local one stops)
            return (True if busy and not app.driver.paused else None) if remote else False
        if action == "run":
            return None if busy and not app.driver.paused else True
        if action == "stop":  # a detached engine can be stopped while it waits, too
            return True if busy or remote else None
        if action == "ack":
            waiting = self.snapshot.waiting
            return True if waiting and waiting.kind == "step" and not busy else None
        if action == "rollback":
            return None if busy else True
        return True

    def action_faster(self) -> None:
        self._change_clock(faster=True)

    def action_slower(self) -> None:
        self._change_clock(faster=False)

    def _change_clock(self, faster: bool) -> None:
        driver = self.app.driver
        if self.app.read_only or not driver.clock_changeable:
            return
        ladder = self.app.engine.runbook.rehearsal.scales
        run = self.snapshot.run
        current = run.time_scale if run else self.app.engine.options.time_scale
        scale = next_scale(current, ladder, faster)
        if scale == current:
            self.notify(f"the clock is already at its {'fastest' if faster else 'slowest'}")
            return
        try:
            driver.set_time_scale(scale)  # journaled, then a snapshot
        except (CommandRefused, BadRequest, OSError) as exc:
            self.notify(str(exc), title="clock unchanged", severity="error", timeout=10)
            return
        self.notify(f"clock: {clock_label(scale)}")

    def action_run(self) -> None:
        """Run until a human is needed. A destructive step is confirmed (typed) before the
        worker starts, so the engine thread never waits on the screen."""
        app = self.app
        if app.read_only or (app.driver.busy and not app.driver.paused):
            return
        if app.driver.paused:  # a detached engine held at a batch boundary: let it go on
            self._start_run(approved=None)
            return
        node = self.snapshot.next_node
        step = self.snapshot.step(node.id) if node and node.kind == "step" else None
        if step is not None and step.destructive:
            gate = app.engine.runbook.step(step.id).requires_gate or "-"
            details = (
                f"{step.id}: {step.title}\nRequires gate {gate} (GO). "
                "Resources are archived beside the journal before deletion; what cannot be "
                "archived is logged and listed in the report."
            )
            if self.snapshot.archive_gaps:
                gaps = self.snapshot.archive_gaps
                details += f"\nArchive incomplete ({len(gaps)}): " + "; ".join(gaps[:3])
                details += " …" if len(gaps) > 3 else ""

            def answered(ok: bool | None) -> None:
                if ok:
                    self._start_run(approved=step.id)
                else:
                    self.notify(f"{step.id} not confirmed; nothing was changed")

            self.app.push_screen(
                TypedConfirm(f"Destructive step in {step.phase}", details, step.phase), answered
            )
            return
        self._start_run(approved=None)

    def _start_run(self, approved: str | None) -> None:
        self.query_one(AlertBanner).clear()
        self.alerts_seen = len(self.snapshot.alerts)
        self.app.driver.start_run(approved)
        self.refresh_view()

    def action_stop(self) -> None:
        driver = self.app.driver
        if driver.remote and not self.app.read_only:
            driver.stop()
            self.notify("stopping the detached engine: the batch finishes, a checkpoint, it exits")
        elif driver.busy:
            driver.stop()
            self.notify("stopping: the current batch finishes, then a checkpoint")

    def action_pause(self) -> None:
        driver = self.app.driver
        if driver.remote and driver.busy and not self.app.read_only:
            driver.pause()  # type: ignore[union-attr]
            self.notify("pausing at the next batch boundary (a checkpoint); r resumes")

    def action_throttle(self) -> None:
        app = self.app
        driver = app.driver
        if not driver.remote or app.read_only or app.view_only:
            return

        def answered(settings: dict | None) -> None:
            if settings is None:
                return
            try:
                said = driver.throttle(**settings)  # type: ignore[union-attr]
            except (CommandRefused, BadRequest, OSError) as exc:
                self.notify(str(exc), title="throttle unchanged", severity="error", timeout=10)
                return
            self.notify(f"throttle: {said}")
            self.refresh_view()

        app.push_screen(ThrottleScreen(driver.throttle_state), answered)  # type: ignore[union-attr]

    def action_detach(self) -> None:
        app = self.app
        if app.handoff is None or app.driver.remote or app.driver.busy or app.read_only:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.notify("starting a detached engine on this journal…")
                app.hand_over()

        app.push_screen(
            YesNo(
                "Hand the run to a background engine? It goes on without this console and this "
                "terminal; the console attaches to it (q then leaves it running). Destructive "
                "steps still ask you first."
            ),
            answered,
        )

    def action_gate(self) -> None:
        snapshot = self.snapshot
        if self.selected and self.selected.kind == "gate":
            gate_id: str | None = self.selected.id
        elif snapshot.waiting and snapshot.waiting.kind == "gate":
            gate_id = snapshot.waiting.id
        else:
            gate_id = snapshot.next_gate
        if gate_id is None:
            self.notify("no gate ahead")
            return
        busy = self.app.driver.busy
        why = "a step is running; decide when the run waits here" if busy else ""
        self.app.push_screen(
            GateScreen(gate_id, read_only=self.app.read_only or busy, why_read_only=why),
            lambda _: self._after_gate(),
        )

    def _after_gate(self) -> None:
        """A decision moves the run on: the view, its step log and the cursor follow."""
        self.selected = None
        self.refresh_view()
        self._write_step_log()
        self._follow_current()

    def action_ack(self) -> None:
        waiting = self.snapshot.waiting
        if not waiting or waiting.kind != "step":
            self.notify("the run is not waiting at a manual step")
            return
        step = self.snapshot.step(waiting.id)
        driver = self.app.driver

        def answered(note: str | None) -> None:
            if note is None:
                return
            try:  # the engine is idle: the ack key is offered only then
                driver.ack(step.id, note=note)
            except (CommandRefused, BadRequest, OSError) as exc:
                self.notify(str(exc), title="not acknowledged", severity="error", timeout=10)
                return
            self.notify(f"{step.id} acknowledged; r continues the run")

        if step.kind == "manual":
            prompt = TextPrompt(
                f"Acknowledge: {step.title}", f"{step.instructions}\nOptional note, then enter."
            )
        else:  # findings to accept: say what, and ask why
            prompt = TextPrompt(
                f"Accept the findings of {step.id}",
                f"{step.error}\nr instead runs it again. Type why these are accepted (recorded).",
                required=True,
            )
        self.app.push_screen(prompt, answered)

    def _rollback_phase(self) -> str | None:
        rb = self.app.engine.runbook
        banner = self.query_one(AlertBanner)
        proposed_id = self.snapshot.proposed_rollback if banner.shown else None
        proposed = next((r for r in rb.rollbacks if r.id == proposed_id), None)
        if proposed is not None:  # the phase whose rollback is the one proposed
            own = [p for p in proposed.phases if (r := rb.rollback_for(p)) and r is proposed]
            return (own or proposed.phases or [None])[0]
        ref = self.shown_ref()
        if ref and ref.kind == "step":
            return rb.step(ref.id).phase
        if ref and ref.kind == "gate":
            gate = rb.gate(ref.id)
            return gate.before_phase or gate.after_phase
        return None

    def action_rollback(self) -> None:
        phase = self._rollback_phase()
        engine = self.app.engine
        rollback = engine.runbook.rollback_for(phase) if phase else None
        if phase is None or rollback is None:
            self.notify(f"no rollback is defined for {phase or 'this selection'}")
            return
        try:
            preview = preview_text(self.app.driver.preview_rollback(phase))
        except (CommandRefused, BadRequest, OSError) as exc:
            self.notify(str(exc), title="no rollback preview", severity="error", timeout=10)
            return

        def confirmed(ok: bool | None) -> None:
            if ok:
                self.app.driver.start_rollback(phase)
                self.refresh_view()

        self.app.push_screen(RollbackScreen(phase, rollback, preview), confirmed)

    def action_log(self) -> None:
        self.app.push_screen(LogScreen(self.app.log_entries))

    def action_step_log(self) -> None:
        ref = self.shown_ref()
        self.app.push_screen(LogScreen(self.app.log_entries, step=ref.id if ref else "run"))

    def action_dismiss_alert(self) -> None:
        self.query_one(AlertBanner).clear()

    def keys_text(self) -> str:
        rows = []
        for binding in self.BINDINGS:
            if not isinstance(binding, Binding) or binding.action.endswith("toggle_keys"):
                continue
            key = binding.key.replace("question_mark", "?").replace(",", " ")
            what = binding.tooltip or binding.description
            action = binding.action.removeprefix("app.")
            available = True if action == "quit_console" else self.check_action(action, ())
            rows.append((key, binding.description, what, available))
        return key_lines(rows)

    def ask_quit(self) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self.app.stop_then_exit()

        if not isinstance(self.app.screen, YesNo):
            self.app.push_screen(
                YesNo("A step is running. Stop it at a checkpoint and quit?"), answered
            )

    def show_keys(self) -> None:
        self.app.push_screen(KeysScreen(self.keys_text()))
