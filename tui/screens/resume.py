"""The greeting on an existing journal: who, when, where it stopped. One key resumes."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from engine.core.views import RunSnapshot
from tui.format import stamp


def resume_summary(snapshot: RunSnapshot, read_only: bool = False) -> str:
    """Who started the run, where it stopped, what it waits for (a viewer: who drives)."""
    run = snapshot.run
    lines = []
    if run is not None:
        target = run.target
        lines += [
            f"Run started by {run.operator} at {stamp(run.started_at)}",
            f"against {target['kind']} {target['identity']} ({target['region']}).",
        ]
    for step in snapshot.steps:
        if step.status in ("running", "interrupted"):
            progress = ", ".join(
                f"{t.table} at {t.done:,}/{t.total:,}"
                if t.total is not None
                else f"{t.table} at {t.done:,}"
                for t in step.progress
            )
            if step.status == "running":
                what = f"is running, driven by {snapshot.driver or 'another console'}"
            else:
                what = "was interrupted"
            lines.append(f"Step {step.id} {what}" + (f": {progress}." if progress else "."))
            lines.append(f"Last checkpoint: {stamp(step.checkpoint_at or step.started_at)}.")
        elif step.status == "failed":
            lines.append(f"Step {step.id} failed: {step.error}")
    if snapshot.proposed_rollback:
        lines.append(
            f"A rollback trigger fired; the proposed rollback is {snapshot.proposed_rollback}."
        )
    if snapshot.waiting:
        lines.append(f"The run waits at {snapshot.waiting}.")
    elif snapshot.next_node:
        lines.append(f"Next: {snapshot.next_node}.")
    return "\n".join(lines)


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
            yield Static(self.summary, classes="dialog-text", id="greeting-text")
            keys = [f"{k} {text}" for k, text in self.offers().items()]
            yield Label(" · ".join([*keys, "esc look first"]), classes="dialog-keys")

    def on_mount(self) -> None:
        if self.read_only:  # a viewer's run moves on under the greeting: it follows
            self.watch(self.app, "snapshot", self._follow, init=False)

    def _follow(self, snapshot: RunSnapshot) -> None:
        self.summary = resume_summary(snapshot, self.read_only)
        self.query_one("#greeting-text", Static).update(self.summary)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "choose":
            key = {"run": "r", "rollback": "b", "ack": "a"}[str(parameters[0])]
            return True if key in self.offers() else None
        return True

    def action_choose(self, command: str) -> None:
        self.dismiss(command)

    def action_close(self) -> None:
        self.dismiss(None)
