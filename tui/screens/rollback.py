"""A phase's rollback: the plan's words, every call it will make, and a typed confirmation."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from engine.core.commands import RollbackPreview
from engine.runbook.model import Rollback


def preview_text(preview: RollbackPreview) -> str:
    """Each step's title and the calls it makes, as the engine previews them."""
    lines: list[str] = []
    for step in preview.steps:
        lines.append(step.title)
        lines += [f"  {call}" for call in step.calls] or ["  (no calls)"]
    return "\n".join(lines)


class RollbackScreen(ModalScreen[bool]):
    """Dismisses True only after the confirmation; escape always cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, phase_id: str, rollback: Rollback, preview: str) -> None:
        super().__init__()
        self.phase_id = phase_id
        self.rollback = rollback
        self.preview = preview

    def compose(self) -> ComposeResult:
        danger = " danger" if self.rollback.destructive else ""
        with Vertical(classes="dialog wide" + danger):
            yield Static(
                f"Rollback {self.rollback.id} ({self.phase_id}): {self.rollback.title}",
                classes="dialog-title",
            )
            yield Static(self.rollback.plan_text, classes="dialog-text")
            with VerticalScroll(classes="preview"):
                yield Static(self.preview)
            if self.rollback.destructive:
                yield Static(f"DESTRUCTIVE. Type [b]{self.phase_id}[/b] and press enter.")
            else:
                yield Static("Type [b]yes[/b] and press enter to roll back.")
            yield Input(placeholder=f"type {self.token} here", id="token")
            yield Label("enter confirm · esc cancel", classes="dialog-keys")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @property
    def token(self) -> str:
        """What must be typed: the phase id when destructive, else "yes" (a stray enter never
        rolls back)."""
        return self.phase_id if self.rollback.destructive else "yes"

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip().lower() == self.token.lower():
            self.dismiss(True)
        else:
            self.notify(f"type {self.token} exactly, or esc to cancel", severity="warning")

    def action_cancel(self) -> None:
        self.dismiss(False)
