"""The console: renders the runbook, subscribes to engine events, calls engine commands.

It holds no migration logic; everything here can also be done with the headless CLI.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.clock import Clock
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.widgets import Footer, RichLog, Static, Tree

from engine.context import RateMeter, eta_seconds
from engine.events import (
    Alert,
    JournalChanged,
    LogLine,
    MetricSample,
    Progress,
    StepFinished,
    StepStarted,
    as_log_line,
)
from engine.lock import Holder, is_locked
from engine.runner import BadRequest, Engine, Outcome, Refused
from tui.logbook import LogEntry, read_new, read_tail, render_entry
from tui.messages import EngineEvent, wrap
from tui.screens.gate import GateScreen
from tui.screens.keys import KeysScreen, key_lines
from tui.screens.log import LogScreen
from tui.screens.prompts import TextPrompt, TypedConfirm, YesNo
from tui.screens.resume import ResumeScreen, proposed_rollback, resume_summary
from tui.screens.rollback import RollbackScreen, preview_text
from tui.widgets.banners import AlertBanner, StatusLine
from tui.widgets.error_rate import ErrorRateStrip
from tui.widgets.step_detail import StepDetail
from tui.widgets.table_progress import ProgressPanel
from tui.widgets.timeline import Timeline

MIN_WIDTH, MIN_HEIGHT = 80, 24
HANGUP_GRACE_SECONDS = 3.0  # for Textual to shut down after the engine checkpointed
Now = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RunbookApp(App[int]):
    CSS_PATH = "styles/app.tcss"
    TITLE = "runbook-console"
    ENABLE_COMMAND_PALETTE = False
    LOGS = Binding.Group("Logs")
    BINDINGS = [
        Binding("r", "run", "Run/resume", tooltip="Run steps until a gate or manual step"),
        Binding("s", "stop", "Stop", tooltip="Checkpoint and stop after the current batch"),
        Binding("g", "gate", "Gate", tooltip="Open the next go/no-go gate (or the selected one)"),
        Binding("a", "ack", "Ack", tooltip="Acknowledge the manual step the run waits at"),
        Binding("b", "rollback", "Rollback", tooltip="Roll back the selected step's phase"),
        Binding("l", "log", "Run log", tooltip="The whole run's log, full screen", group=LOGS),
        Binding(
            "L", "step_log", "Step log", tooltip="The selected step's log, full screen", group=LOGS
        ),
        Binding("x", "dismiss_alert", "Hide alert", tooltip="Hide the alert banner", show=False),
        Binding("question_mark", "toggle_keys", "Keys", tooltip="Every key with what it does"),
        Binding("q", "quit_console", "Quit"),
    ]

    def __init__(
        self,
        engine: Engine,
        read_only: bool = False,
        holder: Holder | None = None,
        now: Now = _utcnow,
        follow: Callable[[Engine], None] | None = None,
        greet: bool = True,
        clock: Clock | None = None,
        quit_timeout: float = 5.0,
    ) -> None:
        super().__init__()
        self.engine = engine
        self.read_only = read_only
        self.holder = holder
        self.now = now
        self.clock = clock  # frozen in tests: progress bars and their timing
        self.quit_timeout = quit_timeout
        self.follow = follow  # re-reads the journal in read-only mode
        self.greet = greet
        self.running = False
        self.idle = threading.Event()
        self.idle.set()
        self.selected: tuple[str, str] | None = None
        self.log_entries: deque[LogEntry] = deque(maxlen=5000)
        self.log_offset = 0
        self.followed_rates: dict[tuple[str, str], RateMeter] = {}  # read-only viewers
        self.alerts_seen = len(engine.journal.alerts)
        self.last_alert: Alert | None = None
        self.quitting = False
        self.pause_before: str | None = None  # a destructive step the run stops short of
        self.ui_loop: asyncio.AbstractEventLoop | None = None
        if not read_only:
            engine.subscribe(self._from_engine)

    # ---- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="topbar")
        yield AlertBanner(id="alert")
        with Horizontal(id="body"):
            yield Timeline(self.engine.runbook, id="timeline")
            with Vertical(id="right"):
                yield StepDetail(id="detail")
                yield ProgressPanel(id="progress", clock=self.clock)
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
        triggers = [t for t in self.engine.runbook.triggers if t.metric == "error_rate"]
        return triggers[0].threshold if triggers else 1.0

    def on_mount(self) -> None:
        self.ui_loop = asyncio.get_running_loop()
        entries, self.log_offset = read_tail(self.engine.store.log_path)
        self.log_entries.extend(entries)
        self._restore_alert()
        self.refresh_view()
        self._write_step_log()
        self.query_one(Timeline).focus()
        self.call_after_refresh(self._follow_current)
        self._check_size()
        if self.read_only:
            self.set_interval(1.0, self._follow_driver)
        if self.greet and self._has_history():
            waiting = self.engine.waiting()
            driver = self.holder.describe() if self.read_only and self.holder else None
            summary = resume_summary(self.engine.journal, waiting, self._next_label(), driver)
            greeting = ResumeScreen(
                summary,
                self.read_only,
                waiting["kind"] if waiting else None,
                proposed_rollback(self.engine.journal),
            )
            self.push_screen(greeting, self._after_greeting)

    def on_resize(self, event: events.Resize) -> None:
        self._check_size(event.size)  # self.size may still be the old one here
        self.call_after_refresh(self.refresh_view)  # timeline labels fit the new width

    def _check_size(self, size: Size | None = None) -> None:
        size = size or self.size
        small = size.width < MIN_WIDTH or size.height < MIN_HEIGHT
        # the main screen, even while a modal is on top of it
        self.screen_stack[0].set_class(small, "too-small")

    # ---- what the run looks like ------------------------------------------------------------

    def _has_history(self) -> bool:
        journal = self.engine.journal
        return any(s.status != "pending" for s in list(journal.steps.values())) or any(
            g.decision or g.ticks for g in list(journal.gates.values())
        )

    def _next_label(self) -> str | None:
        node = self.engine.next_node()
        return f"{node[0]} {node[1]}" if node else None

    def _next_gate_line(self) -> str | None:
        """The next undecided gate and how many of its items are met (is it safe to go on?)."""
        sequence = self.engine.sequence()
        node = self.engine.next_node()
        start = sequence.index(node) if node else len(sequence)
        gate_id = next((nid for kind, nid in sequence[start:] if kind == "gate"), None)
        if gate_id is None:
            return None
        gate = self.engine.runbook.gate(gate_id)
        state = self.engine.journal.gates.get(gate_id)
        met = sum(
            1
            for item in gate.items
            if state
            and (
                item.id in state.ticks
                if item.kind == "manual"
                else (ev := state.evidence.get(item.id)) is not None and ev.ok
            )
        )
        return f"next gate {gate_id}: {met}/{len(gate.items)} met · g opens it"

    def _current_ref(self) -> tuple[str, str] | None:
        running = next(
            (sid for sid, s in list(self.engine.journal.steps.items()) if s.status == "running"),
            None,
        )
        if running:
            return ("step", running)
        return self.engine.next_node()

    def refresh_view(self) -> None:
        engine = self.engine
        waiting = engine.waiting()
        self.query_one(Timeline).refresh_from(engine.journal, waiting)
        ref = self.selected or self._current_ref()
        detail = self.query_one(StepDetail)
        panel = self.query_one(ProgressPanel)
        if ref and ref[0] == "step":
            detail.show_step(
                engine.runbook,
                engine.journal,
                ref[1],
                waiting == {"kind": "step", "id": ref[1]},
                self._next_gate_line(),
            )
            panel.show_step(ref[1])
            state = engine.journal.steps.get(ref[1])
            for table, prog in list(state.progress.items()) if state else ():
                if self.read_only and state.status == "running":
                    # a viewer sees only journal checkpoints: its rate comes from them
                    rate = self._followed_rate(ref[1], table, prog.done)
                    eta = eta_seconds(prog.done, prog.total, rate)
                    panel.set_progress(table, prog.done, prog.total, rate, eta)
                    continue
                row = panel.rows.get(table)
                # while running, live events run ahead of the journal: keep their rate and ETA
                if (
                    row is None
                    or self.read_only
                    or (not self.running and (row.done, row.total) != (prog.done, prog.total))
                ):
                    panel.set_progress(table, prog.done, prog.total)
        elif ref and ref[0] == "gate":
            detail.show_gate(
                engine.runbook, engine.journal, ref[1], waiting == {"kind": "gate", "id": ref[1]}
            )
            panel.show_step(None)
        else:
            detail.update("Every step is done. Press l for the log; `runbook report` audits it.")
            panel.show_step(None)
        self._render_topbar()
        self._render_status(waiting)
        self.refresh_bindings()

    def _followed_rate(self, step_id: str, table: str, done: int) -> float:
        meter = self.followed_rates.setdefault((step_id, table), RateMeter())
        return meter.add(self.clock.time if self.clock else time.monotonic(), done)

    def _render_topbar(self) -> None:
        run = self.engine.journal.run
        parts = [
            self.engine.runbook.runbook.id,
            f"{run.target.kind} {run.target.identity}",
            self.engine.options.operator,
        ]
        if self.read_only and self.holder is None:
            parts = ["READ-ONLY", "no console drives now: quit and start runbook to drive", *parts]
        elif self.read_only:
            parts = ["READ-ONLY", f"driven by {self.holder.describe()}", *parts]
        else:
            parts.append("DRIVING")
        self.query_one("#topbar", Static).update(" " + " · ".join(parts))
        self.query_one("#topbar").set_class(self.read_only, "read-only")

    def _render_status(self, waiting: dict[str, str] | None) -> None:
        steps = self.engine.runbook.steps
        done = sum(
            1 for s in steps if (st := self.engine.journal.steps.get(s.id)) and st.status == "done"
        )
        hint = (lambda text: "") if self.read_only else (lambda text: f" · {text}")
        interrupted = [
            sid for sid, st in list(self.engine.journal.steps.items()) if st.status == "running"
        ]
        failed = [
            sid for sid, st in list(self.engine.journal.steps.items()) if st.status == "failed"
        ]
        if self.running:
            ref = self._current_ref()
            state = f"RUNNING {ref[1] if ref else ''}" + hint("s stops safely")
        elif waiting:
            key = "g opens the gate" if waiting["kind"] == "gate" else "a acknowledges"
            state = f"WAITING at {waiting['kind']} {waiting['id']}" + hint(key)
        elif self.engine.next_node() is None:
            state = "DONE"
        elif interrupted and self.read_only and self.holder is None:
            state = f"INTERRUPTED {interrupted[0]} (its driver left)"
        elif interrupted and self.read_only:
            state = f"RUNNING {interrupted[0]} (driven elsewhere)"
        elif interrupted:
            state = f"INTERRUPTED {interrupted[0]}" + hint("r resumes from its checkpoint")
        elif failed:
            state = f"FAILED {failed[0]}" + hint("r retries · b rolls back")
        else:
            state = f"READY · next {self._next_label()}" + hint("r runs")
        if self.read_only:
            state = "READ-ONLY · " + state
        self.query_one(StatusLine).update(f" {state} · {done}/{len(steps)} steps done")

    def _write_step_log(self) -> None:
        log = self.query_one("#steplog", RichLog)
        log.clear()
        ref = self.selected or self._current_ref()
        step = ref[1] if ref else None
        log.border_title = f"log · {step or 'run'}"
        for entry in self.log_entries:
            if entry.step in (step, "run"):
                log.write(render_entry(entry))

    def _restore_alert(self) -> None:
        alerts = self.engine.journal.alerts
        if not alerts:
            return
        last = alerts[-1]
        state = self.engine.journal.steps.get(str(last.get("step", "")))
        if state and state.status == "failed":
            self._show_alert(
                Alert(
                    trigger_id=str(last.get("trigger", "")),
                    message=str(last.get("message", "")),
                    measured=float(last.get("measured", 0)),
                    threshold=float(last.get("threshold", 0)),
                    proposed_rollback=str(last.get("rollback", "")) or None,
                    step_id=str(last.get("step", "")),
                )
            )

    def _show_alert(self, alert: Alert) -> None:
        self.last_alert = alert
        self.query_one(AlertBanner).show_alert(alert)

    # ---- engine events ----------------------------------------------------------------------

    def _from_engine(self, event: Any) -> None:
        """Runs in the engine's thread: hand over to the UI thread."""
        self.post_message(wrap(event))

    @on(EngineEvent)
    def on_engine_event(self, message: EngineEvent) -> None:
        event = message.event
        if isinstance(event, Progress):
            panel = self.query_one(ProgressPanel)
            if self.selected is None or self.selected == ("step", event.step_id):
                panel.show_step(event.step_id)
                panel.set_progress(
                    event.table,
                    event.done,
                    event.total,
                    event.rate,
                    event.eta_seconds,
                    event.in_flight,
                )
            return
        if (line := as_log_line(event, self.now().strftime("%Y-%m-%dT%H:%M:%SZ"))) is not None:
            self._add_entry(LogEntry(line.at, line.level, line.step_id or "run", line.message))
        if isinstance(event, LogLine):
            entry = LogEntry(
                event.at or self.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
                event.level,
                event.step_id or "run",
                event.message,
            )
            self._add_entry(entry)
            return
        if isinstance(event, Alert):
            self._show_alert(event)
            self.bell()
        elif isinstance(event, MetricSample) and event.metric == "error_rate":
            self.query_one(ErrorRateStrip).add(event.step_id, event.value)
        elif isinstance(event, StepStarted):
            self.selected = None
            self._write_step_log()
            self._follow_current()
        elif isinstance(event, StepFinished):
            self.query_one(ProgressPanel).settle(event.step_id)  # no rate once it stops
        elif isinstance(event, JournalChanged):
            pass
        self.refresh_view()

    def _add_entry(self, entry: LogEntry) -> None:
        self.log_entries.append(entry)
        ref = self.selected or self._current_ref()
        if entry.step in ((ref[1] if ref else None), "run"):
            self.query_one("#steplog", RichLog).write(render_entry(entry))
        if isinstance(self.screen, LogScreen):
            self.screen.add_entry(entry)

    def _follow_driver(self) -> None:
        """Read-only: follow the driver's journal and log as they change."""
        if self.follow is not None:
            try:
                self.follow(self.engine)
            except Exception as exc:  # a journal mid-replace or gone: keep the last view
                self.notify(f"cannot re-read the journal: {exc}", severity="warning")
        entries, self.log_offset = read_new(self.engine.store.log_path, self.log_offset)
        for entry in entries:
            self._add_entry(entry)
        if len(self.engine.journal.alerts) != self.alerts_seen:
            self.alerts_seen = len(self.engine.journal.alerts)
            self._restore_alert()
        self.holder = is_locked(self.engine.store.path)  # the driver may have left or changed
        self.refresh_view()

    # ---- selection ----------------------------------------------------------------------------

    @on(Tree.NodeHighlighted, "#timeline")
    def _highlighted(self, event: Tree.NodeHighlighted) -> None:
        data = event.node.data
        if data and data[0] in ("step", "gate"):
            # on the current node the view follows the run; elsewhere it stays put
            selected = None if data == self._current_ref() else data
            if selected != self.selected or selected is None:
                self.selected = selected
                self.refresh_view()
                self._write_step_log()

    def _follow_current(self) -> None:
        """Put the timeline's cursor on what runs (or waits) now, unless the operator browses."""
        if self.selected is None and (ref := self._current_ref()):
            self.query_one(Timeline).select_ref(ref)

    # ---- commands --------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        main_screen = self.screen is self.screen_stack[0]
        main_only = (
            *("run", "stop", "ack", "rollback", "gate", "log", "step_log"),
            *("dismiss_alert", "quit_console"),
        )
        if action in main_only and not main_screen:
            return False
        if action in ("run", "ack", "rollback", "stop") and self.read_only:
            return False  # hidden, not just dimmed: a viewer has no such keys (and NO_COLOR)
        if action == "run":
            return None if self.running else True
        if action == "stop":
            return True if self.running else None
        if action == "ack":
            waiting = self.engine.waiting()
            return True if waiting and waiting["kind"] == "step" and not self.running else None
        if action == "rollback":
            return None if self.running else True
        return True

    def action_run(self) -> None:
        """Run until a human is needed. A destructive step is confirmed (typed) before the
        worker starts, so the engine thread never waits on the screen."""
        if self.running or self.read_only:
            return
        node = self.engine.next_node()
        step = self.engine.runbook.step(node[1]) if node and node[0] == "step" else None
        if step is not None and step.destructive:
            details = (
                f"{step.id}: {step.title}\nRequires gate {step.requires_gate or '-'} (GO). "
                "Resources are archived beside the journal before deletion."
            )

            def answered(ok: bool | None) -> None:
                if ok:
                    self._start_run(approved=step.id)
                else:
                    self.notify(f"{step.id} not confirmed; nothing was changed")

            self.push_screen(
                TypedConfirm(f"Destructive step in {step.phase}", details, step.phase), answered
            )
            return
        self._start_run(approved=None)

    def _next_destructive(self, after: str | None) -> str | None:
        """The first destructive step after the node `after` (the run pauses before it)."""
        sequence = self.engine.sequence()
        node = self.engine.next_node()
        if node is None:
            return None
        for kind, node_id in sequence[sequence.index(node) :]:
            if (
                kind == "step"
                and node_id != after
                and self.engine.runbook.step(node_id).destructive
            ):
                return node_id
        return None

    def _start_run(self, approved: str | None) -> None:
        self.running = True
        self.idle.clear()
        self.query_one(AlertBanner).clear()
        self.refresh_view()
        sequence = [n for n in self.engine.sequence()]
        pause_before = self._next_destructive(after=approved)
        until = None
        if pause_before is not None:
            index = sequence.index(("step", pause_before))
            until = sequence[index - 1][1] if index > 0 else None
        self.pause_before = pause_before
        self._run_engine(approved, until)

    @work(thread=True, exclusive=True, group="engine", exit_on_error=False)
    def _run_engine(self, approved: str | None, until: str | None) -> Outcome:
        try:
            return self.engine.run(until=until, confirm=lambda step_id, token: step_id == approved)
        finally:
            self.idle.set()

    def on_worker_state_changed(self, event: Any) -> None:
        worker = event.worker
        if worker.group not in ("engine", "rollback") or not worker.is_finished:
            return
        self.running = False
        result = worker.result if isinstance(worker.result, Outcome) else None
        paused = (
            worker.group == "engine"
            and result is not None
            and result.status == "done"
            and self.pause_before is not None
            and self.engine.next_node() == ("step", self.pause_before)
            and not self.quitting
        )
        if worker.error is not None:
            self.notify(f"engine error: {worker.error}", severity="error", timeout=15)
        elif result is not None and not paused:
            self._announce(result)
        if worker.group == "rollback" and result is not None and result.status == "done":
            self.query_one(AlertBanner).clear()  # its proposal was carried out
        self.selected = None
        self.refresh_view()
        self._write_step_log()
        self._follow_current()
        if self.quitting:
            self.exit(0)
        elif paused:  # the run reached a destructive step: ask, then go on
            self.call_later(self.action_run)

    def _announce(self, outcome: Outcome) -> None:
        severity = {"failed": "error", "declined": "warning", "interrupted": "warning"}.get(
            outcome.status, "information"
        )
        text = outcome.message or outcome.status
        if outcome.waiting:
            text = f"waiting at {outcome.waiting['kind']} {outcome.waiting['id']}: {text}"
        self.notify(text, severity=severity, timeout=8)  # type: ignore[arg-type]

    def action_stop(self) -> None:
        if self.running:
            self.engine.request_stop()
            self.notify("stopping: the current batch finishes, then a checkpoint")

    def action_gate(self) -> None:
        waiting = self.engine.waiting()
        gate_id = None
        if self.selected and self.selected[0] == "gate":
            gate_id = self.selected[1]
        elif waiting and waiting["kind"] == "gate":
            gate_id = waiting["id"]
        else:
            sequence = self.engine.sequence()
            node = self.engine.next_node()
            start = sequence.index(node) if node else len(sequence)
            gate_id = next((nid for kind, nid in sequence[start:] if kind == "gate"), None)
        if gate_id is None:
            self.notify("no gate ahead")
            return
        why = "a step is running; decide when the run waits here" if self.running else ""
        self.push_screen(
            GateScreen(
                self.engine, gate_id, read_only=self.read_only or self.running, why_read_only=why
            ),
            lambda _: self._after_gate(),
        )

    def _after_gate(self) -> None:
        """A decision moves the run on: the view, its step log and the cursor follow."""
        self.refresh_view()
        self._write_step_log()
        self._follow_current()

    def action_ack(self) -> None:
        waiting = self.engine.waiting()
        if not waiting or waiting["kind"] != "step":
            self.notify("the run is not waiting at a manual step")
            return
        step = self.engine.runbook.step(waiting["id"])

        def answered(note: str | None) -> None:
            if note is None:
                return
            try:
                self.engine.ack(step.id, by=self.engine.options.operator, note=note)
            except (Refused, BadRequest, OSError) as exc:
                self.notify(str(exc), title="not acknowledged", severity="error", timeout=10)
                return
            self.notify(f"{step.id} acknowledged; r continues the run")
            self.refresh_view()

        state = self.engine.journal.step(step.id)
        if step.kind == "manual":
            prompt = TextPrompt(
                f"Acknowledge: {step.title}", f"{step.instructions}\nOptional note, then enter."
            )
        else:  # findings to accept: say what, and ask why
            prompt = TextPrompt(
                f"Accept the findings of {step.id}",
                f"{state.error}\nr instead runs it again. Type why these are accepted (recorded).",
                required=True,
            )
        self.push_screen(
            prompt,
            answered,
        )

    def _rollback_phase(self) -> str | None:
        alert = self.last_alert
        if alert and self.query_one(AlertBanner).has_class("visible"):
            rb = self.engine.runbook
            proposed = next((r for r in rb.rollbacks if r.id == alert.proposed_rollback), None)
            if proposed is not None:  # the phase whose rollback is the one proposed
                own = [p for p in proposed.phases if (r := rb.rollback_for(p)) and r is proposed]
                return (own or proposed.phases or [None])[0]
            if alert.step_id:
                return rb.step(alert.step_id).phase
        ref = self.selected or self._current_ref()
        if ref and ref[0] == "step":
            return self.engine.runbook.step(ref[1]).phase
        if ref and ref[0] == "gate":
            gate = self.engine.runbook.gate(ref[1])
            return gate.before_phase or gate.after_phase
        return None

    def action_rollback(self) -> None:
        phase = self._rollback_phase()
        rollback = self.engine.runbook.rollback_for(phase) if phase else None
        if phase is None or rollback is None:
            self.notify(f"no rollback is defined for {phase or 'this selection'}")
            return
        preview = preview_text(self.engine.preview_rollback(phase))

        def confirmed(ok: bool | None) -> None:
            if ok:
                self.running = True
                self.idle.clear()
                self.refresh_view()
                self._run_rollback(phase)

        self.push_screen(RollbackScreen(phase, rollback, preview), confirmed)

    @work(thread=True, exclusive=True, group="rollback", exit_on_error=False)
    def _run_rollback(self, phase: str) -> Outcome:
        try:  # the operator confirmed in the modal already
            return self.engine.rollback(
                phase, self.engine.options.operator, confirm=lambda what, token: True
            )
        finally:
            self.idle.set()

    def action_log(self) -> None:
        self.push_screen(LogScreen(self.log_entries))

    def action_step_log(self) -> None:
        ref = self.selected or self._current_ref()
        step = ref[1] if ref else None
        self.push_screen(LogScreen(self.log_entries, step=step))

    def action_toggle_keys(self) -> None:
        if isinstance(self.screen, KeysScreen):
            return
        # the keys of what the operator looks at: the main screen's, or the gate screen's
        owner = self if self.screen is self.screen_stack[0] else self.screen
        rows = []
        for binding in owner.BINDINGS:
            if not isinstance(binding, Binding) or binding.action == "toggle_keys":
                continue
            key = binding.key.replace("question_mark", "?").replace(",", " ")
            what = binding.tooltip or binding.description
            rows.append((key, binding.description, what, owner.check_action(binding.action, ())))
        self.push_screen(KeysScreen(key_lines(rows)))

    async def action_quit(self) -> None:
        """ctrl+q goes the same careful way as q."""
        self.action_quit_console()

    def action_dismiss_alert(self) -> None:
        self.query_one(AlertBanner).clear()

    def action_quit_console(self) -> None:
        if not self.running:
            self.exit(0)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._stop_then_exit()

        if isinstance(self.screen, YesNo):
            return
        self.push_screen(YesNo("A step is running. Stop it at a checkpoint and quit?"), answered)

    def _stop_then_exit(self) -> None:
        """Stop at the next checkpoint; exit when the worker ends (or after quit_timeout)."""
        self.quitting = True
        self.engine.request_stop()
        self.notify("checkpointing before quitting…")
        if not self.running:
            self.exit(0)
            return
        self.set_timer(self.quit_timeout, self._exit_anyway)

    def _exit_anyway(self) -> None:
        if self.running:  # a call stuck on the network: the journal holds the last checkpoint
            self.exit(0, message="the engine did not stop in time; its last checkpoint stands")

    def _after_greeting(self, command: str | None) -> None:
        if command == "run":
            waiting = self.engine.waiting()
            if waiting and waiting["kind"] == "gate":
                self.action_gate()
            else:
                self.action_run()
        elif command == "rollback":
            self.action_rollback()
        elif command == "ack":
            self.action_ack()

    def hangup(self) -> None:
        """SIGHUP (SSH dropped) or SIGTERM: checkpoint, then leave. UI thread."""
        self._stop_then_exit()

    def on_unmount(self) -> None:
        # a finished console no longer listens (the engine has no unsubscribe of its own)
        subscribers = getattr(self.engine, "_subscribers", [])
        if self._from_engine in subscribers:
            subscribers.remove(self._from_engine)


def _leave_after_checkpoint(app: RunbookApp, exited: threading.Event) -> None:
    """After SIGHUP/SIGTERM: once the engine has checkpointed, leave even if Textual's shutdown
    hangs writing to a terminal that is gone (seen with tmux kill-session). The journal is on
    disk and the flock ends with the process."""
    app.idle.wait(app.quit_timeout)
    if not exited.wait(HANGUP_GRACE_SECONDS):
        os._exit(130)


def run_console(workspace: Any) -> int:
    """Open the run for driving (or read-only when another process drives it) and show it."""
    from engine.journal import JournalError
    from engine.lock import LockedError
    from engine.workspace import NoRun, WorldGone

    holder = None
    try:
        workspace.acquire("console")
    except LockedError as exc:
        holder = exc.holder
    try:
        try:
            if holder is not None:
                engine = workspace.open_read_only()
            else:
                if workspace.is_embedded and not workspace.store.exists():
                    print(
                        "Starting the embedded rehearsal world (moto on 127.0.0.1)…",
                        file=sys.stderr,
                    )
                engine = workspace.open(create=True)
        except WorldGone as exc:
            answer = input(
                f"{exc}.\nStart a fresh rehearsal with a new journal "
                "(the old journal is kept aside)? [y/N] "
            )
            if answer.strip().lower() != "y":
                return 2
            workspace.options.fresh = True
            engine = workspace.open(create=True)
        app = RunbookApp(
            engine, read_only=holder is not None, holder=holder, follow=workspace.reload
        )

        exited = threading.Event()

        def on_signal(signum: int, frame: object) -> None:
            # Textual ignores SIGHUP; without this the engine thread would die mid-batch.
            engine.request_stop()  # thread-safe: the action checkpoints at its next check
            loop = app.ui_loop
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(app.hangup)  # wakes the loop, runs on the UI thread
            threading.Thread(
                target=_leave_after_checkpoint, args=(app, exited), daemon=True
            ).start()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGHUP, signal.SIGTERM)}
        try:
            app.run()
        finally:
            exited.set()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            engine.request_stop()
            app.idle.wait(5)  # the engine thread checkpoints before the process ends
        return app.return_code or 0
    except (JournalError, NoRun) as exc:
        print(f"runbook: {exc}", file=sys.stderr)
        return 2
    finally:
        workspace.release()
