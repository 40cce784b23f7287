"""The greeting on an existing journal: who, when, where it stopped. One key resumes."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from engine.journal import Journal


def resume_summary(journal: Journal, waiting: dict[str, str] | None, next_step: str | None) -> str:
    run = journal.run
    lines = [
        f"Run started by {run.operator} at {run.started_at}",
        f"against {run.target.kind} {run.target.identity} ({run.target.region}).",
    ]
    for step_id, state in journal.steps.items():
        if state.status == "running":
            progress = ", ".join(
                f"{t} at {p.done:,}/{p.total:,}" if p.total is not None else f"{t} at {p.done:,}"
                for t, p in state.progress.items()
            )
            lines.append(
                f"Step {step_id} was interrupted" + (f": {progress}." if progress else ".")
            )
            lines.append(f"Last checkpoint: {state.checkpoint_at or state.started_at}.")
        elif state.status == "failed":
            lines.append(f"Step {step_id} failed: {state.error}")
    if waiting:
        lines.append(f"The run waits at {waiting['kind']} {waiting['id']}.")
    elif next_step:
        lines.append(f"Next: {next_step}.")
    return "\n".join(lines)


class ResumeScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("r", "resume", "Resume"),
        Binding("escape", "close", "Look first"),
    ]

    def __init__(self, summary: str, read_only: bool) -> None:
        super().__init__()
        self.summary = summary
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Welcome back", classes="dialog-title")
            yield Static(self.summary, classes="dialog-text")
            keys = "esc close" if self.read_only else "r resume now · esc look first"
            yield Label(keys, classes="dialog-keys")

    def action_resume(self) -> None:
        self.dismiss(not self.read_only)

    def action_close(self) -> None:
        self.dismiss(False)
