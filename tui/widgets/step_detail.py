"""The selected step or gate: what it does, when, its state, result or error. It scrolls (a
manual step's instructions can be long) and says so when there is more below."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from engine.core.events import summary_text
from engine.core.views import GateView, StepView
from tui.format import STATUS_GLYPH, slot_vs_actual, stamp

MORE_HINT = "↓ more: tab here, then ↓/pgdn"


def step_text(
    view: StepView, phase_title: str, next_gate: str | None, can_run: bool = True
) -> Text:
    """`can_run`: this console may press r (a read-only one says which command resumes)."""
    text = Text()
    text.append(f"{STATUS_GLYPH[view.status]} {view.title}\n", style="bold")
    kind = "manual step" if view.kind == "manual" else f"action {view.action}"
    if view.destructive:
        kind += "  DESTRUCTIVE"
    text.append(f"{view.id} · {phase_title} · {kind}\n", style="dim")
    text.append(f"{view.status.upper().replace('_', ' ')}  attempt {view.attempts}  ")
    text.append(slot_vs_actual(view.slot, view.started_at, view.finished_at, view.status) + "\n")
    if view.status == "interrupted":
        how = "r resumes" if can_run else "`runbook` resumes it"
        text.append(f"stopped at its checkpoint of {stamp(view.checkpoint_at)}; {how}\n")
    if view.error:
        text.append(f"error: {view.error}\n", style="bold red")
    if view.kind == "manual":
        if view.acked_by:
            text.append(f"acknowledged by {view.acked_by} at {stamp(view.acked_at)}\n")
        else:
            text.append(view.instructions.strip() + "\n", style="italic")
    if view.summary and (figures := summary_text(view.summary)):
        text.append(f"result: {figures}\n")
    if next_gate:
        text.append(next_gate, style="dim")
    return text.rstrip() or text


def gate_text(view: GateView, waiting: bool) -> Text:
    text = Text()
    text.append(f"GATE {view.title}\n", style="bold")
    decision = view.decision or "undecided"
    who = f" by {view.by} at {stamp(view.at)}" if view.by else ""
    text.append(f"{decision}{who}" + ("  (the run waits here)" if waiting else "") + "\n")
    for item in view.items:
        mark = {True: "x", False: " ", None: "?"}[item.ok]
        text.append(f"[{mark}] {item.text} ({item.kind})\n")
    text.append("press g to open the gate", style="dim")
    return text


class StepDetail(VerticalScroll):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.body = Static(id="detail-text")
        self._shown: Text | str = ""

    def compose(self) -> ComposeResult:
        yield self.body

    def update(self, content: Text | str) -> None:
        if content != self._shown:  # the same text again keeps the reader's place
            self._shown = content
            self.body.update(content)
            self.remove_class("more")
            self.scroll_home(animate=False)
        self.call_after_refresh(self._hint)

    def on_resize(self) -> None:
        self._hint()

    def _hint(self) -> None:
        """Say that the pane scrolls when what it shows does not fit."""
        if self.max_scroll_y > 0:
            self.add_class("more")  # a bottom border carries the hint (removed on update)
        more = self.max_scroll_y > 0 and self.scroll_y < self.max_scroll_y
        self.border_subtitle = MORE_HINT if more else ("end" if self.has_class("more") else "")

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self._hint()

    def show_step(
        self,
        view: StepView,
        phase_title: str,
        next_gate: str | None = None,
        can_run: bool = True,
    ) -> None:
        self.update(step_text(view, phase_title, next_gate, can_run))

    def show_gate(self, view: GateView, waiting: bool) -> None:
        self.update(gate_text(view, waiting))
