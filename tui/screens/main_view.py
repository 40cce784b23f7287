"""The main screen's view: timeline, detail, progress, error rate, step log, status line.

It composes the widgets, renders the run's snapshot (`RunbookApp.snapshot`) and nothing else of
the engine's state, and routes the engine's events to them. The screen itself (its keys and
what they do: commands to the engine through the app's driver) is `MainScreen`, main.py.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, RichLog, Static, Tree

from engine.core.events import Alert, LogLine, MetricSample, Progress, StepStarted, as_log_line
from engine.core.views import AlertView, NodeRef, RunSnapshot, RunState
from tui.console_app import ConsoleApp
from tui.lines import PAUSE_LINES, next_gate_line, status_text, throttle_note, topbar_text
from tui.logbook import LogEntry, entry_of, render_entry
from tui.messages import EngineEvent
from tui.screens.prompts import TypedConfirm
from tui.widgets.banners import AlertBanner, StatusLine
from tui.widgets.error_rate import ErrorRateStrip
from tui.widgets.step_detail import StepDetail
from tui.widgets.table_progress import ProgressPanel
from tui.widgets.timeline import Timeline

MIN_WIDTH, MIN_HEIGHT = 80, 24


class MainView(Screen[None]):
    app: ConsoleApp

    def __init__(self) -> None:
        super().__init__()
        self.selected: NodeRef | None = None  # browsing: the cursor is off what runs now
        self.alerts_seen = 0
        # the destructive step this console last confirmed, until it is done: a late "stopped
        # short of it" (the run before the operator's r) raises no second question
        self.consented: str | None = None
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
        self._close_settled_dialog(snapshot)
        if self.consented and snapshot.step(self.consented).status == "done":
            self.consented = None
        self.refresh_view()
        self._sync_step_log()

    def _close_settled_dialog(self, snapshot: RunSnapshot) -> None:
        """A confirmation whose step already runs or is done (consent given elsewhere) asks
        nothing any more: it says so and waits for enter or esc (closing it under the
        operator's fingers would send the rest of a typed phase id to the main screen's keys)."""
        dialog = self.app.screen
        if not isinstance(dialog, TypedConfirm) or dialog.step is None or dialog.settled:
            return
        status = snapshot.step(dialog.step).status
        if status in ("running", "done"):
            # a second question for the step this console confirmed, or another terminal's
            how = "confirmed" if dialog.step == self.consented else "confirmed elsewhere"
            dialog.settle(f"{dialog.step} was {how} ({status})")

    def refresh_view(self) -> None:
        snapshot = self.snapshot
        self.query_one(Timeline).refresh_from(snapshot)
        ref = self.shown_ref()
        detail = self.query_one(StepDetail)
        panel = self.query_one(ProgressPanel)
        runbook = self.app.engine.runbook
        if ref and ref.kind == "step":
            view = snapshot.step(ref.id)
            detail.show_step(
                view,
                runbook.phase(view.phase).title,
                next_gate_line(snapshot),
                can_run=bool(self.check_action("run", ())),
            )
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
                width=self.query_one("#topbar").size.width or None,
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
        owner = self._log_owner()
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
            # only the step in view: a late event of a finished step must not leave its bar
            # under the manual step the run has moved on to
            if self.shown_ref() == NodeRef.step(event.step_id):
                panel.show_step(event.step_id)
                panel.set_progress(
                    event.table,
                    event.done,
                    event.total,
                    event.rate,
                    event.eta_seconds,
                    in_flight=event.in_flight,
                    capacity=event.capacity,
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

    def _log_owner(self) -> str:
        ref = self.shown_ref()
        return ref.id if ref else "run"

    def _sync_step_log(self) -> bool:
        """What is in view moved on without a StepStarted here (an attached or read-only
        console learns it from snapshots): the pane follows, title and lines together.
        True when it was written anew (from every entry the app holds)."""
        if self.query_one("#steplog", RichLog).border_title == f"log · {self._log_owner()}":
            return False
        self._write_step_log()
        return True

    def add_entry(self, entry: LogEntry) -> None:
        """A new log line: into the pane when it belongs to what is in view."""
        if self._sync_step_log():  # never a line of one step under another step's title
            return  # written anew, this entry with the others
        if entry.step == self._log_owner():
            self.query_one("#steplog", RichLog).write(render_entry(entry))

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
