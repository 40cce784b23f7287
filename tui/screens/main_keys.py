"""The main screen's keys: its bindings, and when each one works (for the footer and for ?)."""

from __future__ import annotations

from textual.binding import Binding, BindingType

from tui.console_app import ConsoleApp

LOGS = Binding.Group("Logs")
# attached: p holds the run, t sets its throttle (gh-ost's sense of throttle); one footer
# entry keeps every key visible at 80 columns
THROTTLE = Binding.Group("Throttle")
MAIN_BINDINGS: list[BindingType] = [
    Binding("r", "run", "Run/resume", tooltip="Run steps until a gate or manual step"),
    Binding("s", "stop", "Stop", tooltip="Checkpoint and stop after the current batch"),
    Binding(
        "p",
        "pause",
        "Pause",
        tooltip="Detached engine: hold the run at its next batch",
        group=THROTTLE,
    ),
    Binding(
        "t",
        "throttle",
        "Throttle",
        tooltip="Detached engine: set writes in flight, items/s, capacity share while it runs",
        group=THROTTLE,
    ),
    Binding("g", "gate", "Gate", tooltip="Open the next go/no-go gate (or the selected one)"),
    Binding("a", "ack", "Ack", tooltip="Acknowledge the manual step the run waits at"),
    Binding("b", "rollback", "Rollback", tooltip="Roll back the selected step's phase"),
    Binding("l", "log", "Run log", tooltip="The whole run's log, full screen", group=LOGS),
    Binding(
        "L", "step_log", "Step log", tooltip="The selected step's log, full screen", group=LOGS
    ),
    Binding(
        "D",
        "detach",
        "Detach",
        tooltip="Hand the run to a background engine that outlives this console",
        show=False,  # in ? (the footer keeps q visible at 80 columns)
    ),
    Binding("x", "dismiss_alert", "Hide alert", tooltip="Hide the alert banner", show=False),
    Binding("plus", "faster", "Faster", tooltip="Rehearsal clock one step faster", show=False),
    Binding("minus", "slower", "Slower", tooltip="Rehearsal clock one step slower", show=False),
    Binding("question_mark", "app.toggle_keys", "Keys", tooltip="Every key with what it does"),
    Binding("q", "app.quit_console", "Quit"),
]

# the keys that drive the run: a read-only console has none of them
DRIVING = ("run", "ack", "rollback", "stop", "faster", "slower", "pause", "detach", "throttle")


def main_key_state(action: str, app: ConsoleApp) -> bool | None:
    """Whether a main-screen key works now: True, None = not now (dimmed), False = never
    (hidden)."""
    if action in DRIVING and app.read_only:
        return False  # hidden, not just dimmed: a viewer has no such keys (and NO_COLOR)
    if action == "detach":  # from a console that drives the engine itself, when idle
        if app.handoff is None or app.driver.remote:
            return False
        return None if app.driver.busy else True
    if action in ("faster", "slower") and app.handing_over:
        return None
    if action in ("faster", "slower"):
        return app.driver.clock_changeable  # a real account stays at real time
    busy = app.driver.busy
    remote = app.driver.remote
    if action == "throttle":  # a detached engine serves it; never a viewer
        return remote and not app.view_only
    if action == "pause":  # only a detached engine pauses (a local one stops)
        return (True if busy and not app.driver.paused else None) if remote else False
    if action == "run":
        return None if busy and not app.driver.paused else True
    if action == "stop":  # a detached engine can be stopped while it waits, too
        return True if busy or remote else None
    if action == "ack":
        waiting = app.snapshot.waiting
        return True if waiting and waiting.kind == "step" and not busy else None
    if action == "rollback":
        return None if busy else True
    return True
