"""The greeting on an existing journal: who, when, where it stopped. One key resumes."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from engine.journal import Journal


def resume_summary(
    journal: Journal,
    waiting: dict[str, str] | None,
    next_step: str | None,
    driver: str | None = None,
) -> str:
    """`driver`: who drives now, when this console only watches."""
    run = journal.run
    lines = [
        f"Run started by {run.operator} at {run.started_at}",
        f"against {run.target.kind} {run.target.identity} ({run.target.region}).",
    ]
    for step_id, state in list(journal.steps.items()):
        if state.status == "running":
            progress = ", ".join(
                f"{t} at {p.done:,}/{p.total:,}" if p.total is not None else f"{t} at {p.done:,}"
                for t, p in list(state.progress.items())
            )
            what = f"is running, driven by {driver}" if driver else "was interrupted"
            lines.append(f"Step {step_id} {what}" + (f": {progress}." if progress else "."))
            lines.append(f"Last checkpoint: {state.checkpoint_at or state.started_at}.")
        elif state.status == "failed":
            lines.append(f"Step {step_id} failed: {state.error}")
    rollback = proposed_rollback(journal)
    if rollback:
        lines.append(f"A rollback trigger fired; the proposed rollback is {rollback}.")
    if waiting:
        lines.append(f"The run waits at {waiting['kind']} {waiting['id']}.")
    elif next_step:
        lines.append(f"Next: {next_step}.")
    return "\n".join(lines)


def proposed_rollback(journal: Journal) -> str | None:
    """The rollback the last alert proposed, while the step it stopped is still failed."""
    if not journal.alerts:
        return None
    last = journal.alerts[-1]
    state = journal.steps.get(str(last.get("step", "")))
    if state is None or state.status != "failed":
        return None
    return str(last.get("rollback", "")) or None


class ResumeScreen(ModalScreen[str | None]):
    """Dismissed with the chosen command: "run", "rollback", "ack", or None (look first)."""

    BINDINGS = [
        Binding("r", "choose('run')", "Resume"),
        Binding("b", "choose('rollback')", "Roll back"),
        Binding("a", "choose('ack')", "Acknowledge"),
        Binding("escape", "close", "Look first"),
    ]

    def __init__(
        self,
        summary: str,
        read_only: bool,
        waiting_kind: str | None = None,
        rollback: str | None = None,
    ) -> None:
        super().__init__()
        self.summary = summary
        self.read_only = read_only
        self.waiting_kind = waiting_kind
        self.rollback = rollback

    def offers(self) -> dict[str, str]:
        """The commands this greeting offers, by key."""
        if self.read_only:
            return {}
        if self.waiting_kind == "step":
            return {"a": "acknowledge (the run waits for it)"}
        if self.rollback:  # a trigger fired: rolling back comes first, retrying second
            return {"b": f"roll back ({self.rollback})", "r": "retry"}
        if self.waiting_kind == "gate":
            return {"r": "open the run at the gate"}
        return {"r": "resume now"}

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Welcome back", classes="dialog-title")
            yield Static(self.summary, classes="dialog-text")
            keys = [f"{k} {text}" for k, text in self.offers().items()]
            yield Label(" · ".join([*keys, "esc look first"]), classes="dialog-keys")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "choose":
            key = {"run": "r", "rollback": "b", "ack": "a"}[str(parameters[0])]
            return True if key in self.offers() else None
        return True

    def action_choose(self, command: str) -> None:
        self.dismiss(command)

    def action_close(self) -> None:
        self.dismiss(None)
