"""The main screen: the view of the run (main_view.py), its keys (main_keys.py) and what they
do: commands to the engine through the app's driver."""

from __future__ import annotations

from engine.core.outcome import BadRequest, CommandRefused, Outcome
from engine.rehearsal.clock import clock_label, next_scale
from tui.messages import WorkEnded
from tui.screens.gate import GateScreen
from tui.screens.keys import KeysScreen, key_lines, key_rows
from tui.screens.log import LogScreen
from tui.screens.main_keys import MAIN_BINDINGS, main_key_state
from tui.screens.main_view import MainView
from tui.screens.prompts import TextPrompt, TypedConfirm, YesNo
from tui.screens.rollback import RollbackScreen, preview_text
from tui.screens.throttle import ThrottleScreen
from tui.widgets.banners import AlertBanner


class MainScreen(MainView):
    """The main screen: its view (main_view.py), its keys (main_keys.py) and what they do, the
    action_* methods Textual calls: commands to the engine through the app's driver."""

    BINDINGS = MAIN_BINDINGS

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
                    self.consented = step.id
                    self._start_run(approved=step.id)
                elif ok is False:
                    self.notify(f"{step.id} not confirmed; nothing was changed")

            dialog = TypedConfirm(
                f"Destructive step in {step.phase}", details, step.phase, step=step.id
            )
            self.app.push_screen(dialog, answered)
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

            def answered(yes: bool | None) -> None:
                if yes:
                    driver.stop()
                    self.notify(
                        "stopping the detached engine: the batch finishes, a checkpoint, it exits"
                    )

            # the engine exits and nothing drives the run until someone starts it again
            self.app.push_screen(
                YesNo(
                    "Stop the detached engine? The current batch finishes, a checkpoint is "
                    "saved, and the engine exits: nothing drives the run until `runbook resume` "
                    "or a console starts it again. (p pauses it instead.)"
                ),
                answered,
            )
        elif driver.busy:
            driver.stop()
            self.notify("stopping: the current batch finishes, then a checkpoint")

    def action_pause(self) -> None:
        driver = self.app.driver
        if driver.remote and driver.busy and not self.app.read_only:
            driver.pause()
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
                said = driver.throttle(**settings)
            except (CommandRefused, BadRequest, OSError) as exc:
                self.notify(str(exc), title="throttle unchanged", severity="error", timeout=10)
                return
            self.notify(f"throttle: {said}")
            self.refresh_view()

        app.push_screen(ThrottleScreen(driver.throttle_state), answered)

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
        proposed = rb.find_rollback(proposed_id)
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

    def ask_quit(self) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self.app.stop_then_exit()

        if not isinstance(self.app.screen, YesNo):
            self.app.push_screen(
                YesNo("A step is running. Stop it at a checkpoint and quit?"), answered
            )

    # ---- a run's end -----------------------------------------------------------------------

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
            self.call_later(self._ask_to_go_on)

    def _ask_to_go_on(self) -> None:
        """The question a stop short of a destructive step raises, unless the operator is
        already elsewhere (a gate, a log) or answering one (r pressed meanwhile): never a
        second dialog stacked on the first; nor again for the step this console has just
        confirmed (the stop came before the operator's r, and the run it started takes it)."""
        node = self.snapshot.next_node
        if self.app.screen is not self or (node is not None and node.id == self.consented):
            return
        self.action_run()

    def _announce(self, outcome: Outcome) -> None:
        severity = {"failed": "error", "declined": "warning", "interrupted": "warning"}.get(
            outcome.status, "information"
        )
        text = outcome.message or outcome.status
        if outcome.waiting:
            text = f"waiting at {outcome.waiting}: {text}"
        self.notify(text, severity=severity, timeout=8)  # type: ignore[arg-type]

    # ---- keys ------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return main_key_state(action, self.app)

    def keys_text(self) -> str:
        def available(action: str) -> bool | None:
            action = action.removeprefix("app.")
            return True if action == "quit_console" else self.check_action(action, ())

        return key_lines(key_rows(self.BINDINGS, available))

    def show_keys(self) -> None:
        self.app.push_screen(KeysScreen(self.keys_text()))
