"""Small modals: a yes/no question, a text prompt, and a typed confirmation. Escape cancels."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


class YesNo(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "Cancel"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="dialog-text")
            yield Label("y yes · n no · esc cancel", classes="dialog-keys")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class TextPrompt(ModalScreen[str | None]):
    """Asks for a line of text (a note, an override reason). Enter submits, escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, prompt: str, required: bool = False) -> None:
        super().__init__()
        self.title_text = title
        self.prompt = prompt
        self.required = required

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.title_text, classes="dialog-title")
            yield Static(self.prompt, classes="dialog-text")
            yield Input(placeholder="type here, enter to submit", id="answer")
            yield Label("enter submit · esc cancel", classes="dialog-keys")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if self.required and not value:
            self.notify("this needs an answer (esc cancels)", severity="warning")
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class TypedConfirm(ModalScreen[bool | None]):
    """Destructive work: the operator types the id to confirm. Anything else does nothing.
    `step`: the step it asks about; once that step runs or is done (confirmed elsewhere, say by
    `runbook resume --yes`), the main screen settles the dialog: it says why and asks nothing.
    It stays until enter or esc, so keys the operator was typing land in it, never on the main
    screen beneath (where p pauses and s stops)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("enter", "close", show=False)]

    def __init__(self, title: str, details: str, token: str, step: str | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.details = details
        self.token = token
        self.step = step

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog danger"):
            yield Static(self.title_text, classes="dialog-title")
            yield Static(self.details, classes="dialog-text")
            yield Static(f"Type [b]{self.token}[/b] and press enter to confirm.", id="confirm-ask")
            yield Input(placeholder=self.token, id="token")
            yield Label("enter confirm · esc cancel", classes="dialog-keys", id="confirm-keys")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if self.settled:
            return  # action_close answers enter
        if event.value.strip() == self.token:
            self.dismiss(True)
        else:
            self.notify(f"type {self.token} exactly, or esc to cancel", severity="warning")

    @property
    def settled(self) -> bool:
        return self.has_class("settled")

    def settle(self, reason: str) -> None:
        """Nothing is left to answer: say why; every key but enter and esc does nothing."""
        if self.settled:
            return
        self.add_class("settled")
        field = self.query_one("#token", Input)
        field.disabled = True
        self.set_focus(None)
        self.query_one("#confirm-ask", Static).update(f"[b]{reason}[/b]: nothing to answer.")
        self.query_one("#confirm-keys", Label).update("enter or esc closes")

    def action_close(self) -> None:
        if self.settled:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None if self.settled else False)
