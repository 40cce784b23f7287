"""A go/no-go gate: automatic checks evaluated live with their evidence, manual ticks, decision."""

from __future__ import annotations

import time

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from engine.core.outcome import BadRequest, CommandRefused
from engine.core.views import GateView, ItemView, NodeRef
from engine.run.engine import Engine
from engine.runbook.model import Gate
from tui.format import stamp
from tui.screens.prompts import TextPrompt

# automatic items are evaluated again while the run waits here: every 30 s of plan time (a
# fast rehearsal clock moves a soak or a metric window on in seconds), counted from the end
# of the last evaluation and never sooner than a few seconds, so the keys (GO waits for an
# evaluation to end) stay usable however slow the target answers
RECHECK_PLAN_SECONDS = 30.0
RECHECK_MIN_SECONDS = 5.0
RECHECK_TICK_SECONDS = 1.0


def short(value: object, width: int = 56) -> str:
    """One line. A sentence keeps its start (the figures come first); a long identifier (an
    ARN, a path) keeps its distinctive end."""
    text = str(value).replace("\n", " ")
    if len(text) <= width:
        return text
    if " " in text:
        return text[: width - 1] + "…"
    return "…" + text[-(width - 1) :]


def evidence_lines(data: dict, limit: int = 3) -> list[str]:
    """Evidence data as short lines: nested maps show their first entries and a count."""
    lines: list[str] = []
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"{key}: {len(value)} entries")
            lines += [f"  {k}: {short(v)}" for k, v in list(value.items())[:limit]]
            if len(value) > limit:
                lines.append(f"  … {len(value) - limit} more")
        else:
            lines.append(f"{key}: {value}")
    return lines


class GateScreen(Screen[None]):
    DECIDE = Binding.Group("GO / NO-GO / override")
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("space,t", "tick", "Tick/untick", priority=True),
        Binding(
            "A",
            "tick_as",
            "Tick as…",
            tooltip="rehearsal only: tick as a stand-in approver (recorded as not verified)",
            show=False,  # the footer is full at 80 columns: the item's pane names the key
        ),
        Binding("e", "evaluate", "Re-check"),
        Binding("y", "go", "GO", tooltip="GO: every item is met", group=DECIDE),
        Binding("n", "no_go", "NO-GO", tooltip="NO-GO with a note saying why", group=DECIDE),
        Binding(
            "o",
            "override",
            "GO with override",
            tooltip="GO although items are not met, with a typed reason",
            group=DECIDE,
        ),
    ]

    def __init__(self, gate_id: str, read_only: bool = False, why_read_only: str = "") -> None:
        super().__init__()
        self.gate_id = gate_id
        self.read_only = read_only
        self.why_read_only = why_read_only or "another console drives this run"
        self.evaluating = False
        self.evaluated_at = 0.0  # monotonic time the last evaluation ended

    def compose(self) -> ComposeResult:
        with Vertical(id="gate-body"):
            yield Static(id="gate-title")
            yield OptionList(id="gate-items")
            yield Static(id="gate-evidence")
            yield Static(id="gate-verdict")
        yield Footer()

    def on_mount(self) -> None:
        self.watch(self.app, "snapshot", lambda _: self._redraw(), init=False)
        self._redraw()
        self.query_one(OptionList).focus()
        if not self.read_only:
            self.action_evaluate()
            # live: a metric can cross its threshold while the operator reads the list
            self.set_interval(RECHECK_TICK_SECONDS, self._recheck)

    def _recheck(self) -> None:
        run = self.app.snapshot.run  # type: ignore[attr-defined]
        scale = run.time_scale if run else 1.0
        due = self.evaluated_at + max(RECHECK_MIN_SECONDS, RECHECK_PLAN_SECONDS / scale)
        if time.monotonic() < due:
            return
        if self.waiting_here and not self.evaluating and self.is_current:
            self.action_evaluate()

    # ---- state (from the run's snapshot) ------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """For the runbook only; commands go through the app's driver (local or detached), and
        what is shown comes from the snapshot."""
        return self.app.engine  # type: ignore[attr-defined]

    @property
    def view(self) -> GateView:
        return self.app.snapshot.gate(self.gate_id)  # type: ignore[attr-defined]

    @property
    def gate(self) -> Gate:
        return self.engine.runbook.gate(self.gate_id)

    @property
    def waiting_here(self) -> bool:
        return self.app.snapshot.waiting == NodeRef.gate(self.gate_id)  # type: ignore[attr-defined]

    def item(self, item_id: str) -> ItemView:
        return next(i for i in self.view.items if i.id == item_id)

    def item_ok(self, item_id: str) -> bool | None:
        return self.item(item_id).ok

    def failing(self) -> list[str]:
        return [i.id for i in self.view.failing]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("tick", "tick_as", "evaluate", "go", "no_go", "override") and self.read_only:
            return False  # hidden: the verdict line says why
        if action == "tick_as":
            run = self.app.snapshot.run  # type: ignore[attr-defined]
            return run is not None and run.target.get("kind") != "aws"  # refused on AWS
        short_of_approvals = self.view.approval_problem is not None  # no override lifts it
        if action == "go":
            blocked = self.failing() or short_of_approvals
            return None if (blocked or self.evaluating or not self.waiting_here) else True
        if action == "override" and short_of_approvals:
            return None
        if action in ("no_go", "override"):
            return True if self.waiting_here and not self.evaluating else None
        return True

    # ---- rendering -------------------------------------------------------------------------

    def _redraw(self) -> None:
        view = self.view
        decision = view.decision or "undecided"
        where = "the run waits here" if self.waiting_here else "the run is not at this gate"
        self.query_one("#gate-title", Static).update(
            Text.assemble((f"GATE {view.title}\n", "bold"), f"{decision} · {where}")
        )
        options = self.query_one(OptionList)
        highlighted = options.highlighted
        options.clear_options()
        for item in view.items:
            mark = {True: "[x]", False: "[ ]", None: "[?]"}[item.ok]
            if item.kind == "auto" and self.evaluating:
                mark = "[…]"
            kind = "auto  " if item.kind == "auto" else "manual"
            detail = item.detail
            if item.kind == "manual" and item.ok is not True:
                detail = "not ticked · space ticks"
            style = {True: "green", False: "red", None: "yellow"}[item.ok]
            label = Text.assemble(
                (mark, f"bold {style}"),
                f" {kind} {item.text}\n",
                (f"    {short(detail, 70)}", "dim"),
            )
            options.add_option(Option(label, id=item.id))
        options.highlighted = min(highlighted or 0, len(view.items) - 1)
        self._render_evidence()
        failing = self.failing()
        if self.read_only:
            verdict = f"READ-ONLY: {self.why_read_only}. Evidence shown is the last recorded."
        elif not self.waiting_here:
            verdict = "The run is not at this gate: it can be decided once the run waits here."
        elif self.evaluating:
            verdict = "evaluating automatic checks…"
        elif view.approval_problem:
            verdict = f"GO disabled: {view.approval_problem} · n = NO-GO"
        elif failing:
            verdict = (
                f"GO disabled: {len(failing)} item(s) not met. "
                "o = GO with an override reason · n = NO-GO"
            )
        else:
            verdict = "all items met: y = GO · n = NO-GO"
        self.query_one("#gate-verdict", Static).update(verdict)
        self.refresh_bindings()

    def _render_evidence(self) -> None:
        options = self.query_one(OptionList)
        item = self.view.items[options.highlighted or 0]
        text = Text()
        text.append(f"{item.id}: ", style="bold")
        if item.kind == "manual":
            ticked = f"ticked by {item.by} at {stamp(item.at)}"
            text.append(ticked if item.ok else "not ticked (space ticks)")
            if not item.ok and self.check_action("tick_as", ()):
                text.append("\n  A ticks it as a rehearsal stand-in (not verified)", style="dim")
            if item.ok:
                text.append(f"\n  verified: {item.identity or 'not verified'}", style="dim")
            if item.approvers:
                text.append(f"\n  may tick: {', '.join(item.approvers)}", style="dim")
            view = self.view
            if view.min_approvals or view.approver_not_operator:
                who = ", ".join(view.approved_by) or "none yet"
                text.append(f"\n  distinct verified approvers: {who}", style="dim")
        else:
            text.append(item.detail)
            if item.at is not None:
                text.append(f"\n  taken {stamp(item.at)}", style="dim")
            for line in evidence_lines(item.data)[:8]:
                text.append(f"\n  {line}", style="dim")
        self.query_one("#gate-evidence", Static).update(text)

    @on(OptionList.OptionHighlighted)
    def _highlighted(self) -> None:
        self._render_evidence()

    @on(OptionList.OptionSelected)
    def _selected(self) -> None:
        self.action_tick()

    # ---- actions ---------------------------------------------------------------------------

    def action_tick(self) -> None:
        if self.read_only:  # Enter on an item reaches here without check_action (robust)
            self.notify(f"read-only: {self.why_read_only}")
            return
        options = self.query_one(OptionList)
        if options.highlighted is None:
            return
        item = self.view.items[options.highlighted]
        if item.kind != "manual":
            self.notify("automatic item: the engine evaluates it (e re-checks)")
            return
        driver = self.app.driver  # type: ignore[attr-defined]
        try:
            if self.item_ok(item.id):
                driver.untick(self.gate_id, item.id)
            else:
                driver.tick(self.gate_id, item.id)
        except (CommandRefused, BadRequest, OSError) as exc:
            self.notify(str(exc), severity="error", timeout=10)
        self._redraw()

    def action_tick_as(self) -> None:
        """A rehearsal run by one person: tick the item as its second identity (`--as`)."""
        options = self.query_one(OptionList)
        if options.highlighted is None:
            return
        item = self.view.items[options.highlighted]
        if item.kind != "manual" or item.ok:
            self.notify("pick an unticked manual item")
            return

        def answered(name: str | None) -> None:
            if not name:
                return
            try:
                self.app.driver.tick(self.gate_id, item.id, stand_in=name)  # type: ignore[attr-defined]
            except (CommandRefused, BadRequest, OSError) as exc:
                self.notify(str(exc), severity="error", timeout=10)
            self._redraw()

        self.app.push_screen(
            TextPrompt(
                "Tick as a stand-in (rehearsal)",
                "Name of the second approver (os:NAME to the gate's rules; recorded as not "
                "verified, beside your verified OS user):",
                required=True,
            ),
            answered,
        )

    def action_evaluate(self) -> None:
        self.evaluating = True
        self._redraw()
        self._evaluate()

    @work(thread=True, exclusive=True, group="gate", exit_on_error=False)
    def _evaluate(self) -> None:
        # recorded: the snapshot brings the evidence
        self.app.driver.evaluate_gate(self.gate_id)  # type: ignore[attr-defined]

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "gate" or event.state not in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
        ):
            return
        self.evaluating = False
        self.evaluated_at = time.monotonic()
        if event.state == WorkerState.ERROR:
            self.notify(f"{event.worker.error}", severity="error", timeout=10)
            if event.worker.name == "decide":  # refused: show what the engine just measured
                self.action_evaluate()
                return
        elif event.worker.name == "decide":
            self.notify(f"{self.gate_id}: decision recorded")
            self.app.pop_screen()
            return
        self._redraw()

    def action_go(self) -> None:
        self._decide(go=True, note="", override=None)

    def action_no_go(self) -> None:
        def answered(note: str | None) -> None:
            if note:
                self._decide(go=False, note=note, override=None)

        self.app.push_screen(
            TextPrompt("NO-GO", "Why not? (recorded in the journal)", required=True), answered
        )

    def action_override(self) -> None:
        failing = ", ".join(self.failing()) or "none"

        def answered(reason: str | None) -> None:
            if reason:
                self._decide(go=True, note="", override=reason)

        self.app.push_screen(
            TextPrompt(
                "GO with override",
                f"Items not met: {failing}.\nType the reason for going anyway (recorded).",
                required=True,
            ),
            answered,
        )

    def _decide(self, go: bool, note: str, override: str | None) -> None:
        self.evaluating = True
        self._redraw()

        def decide() -> None:
            try:
                self.app.driver.decide(  # type: ignore[attr-defined]
                    self.gate_id, go=go, note=note, override=override
                )
            except (CommandRefused, BadRequest) as exc:
                raise RuntimeError(str(exc)) from None

        self.run_worker(decide, thread=True, group="gate", name="decide", exit_on_error=False)
