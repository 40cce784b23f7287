"""Engine events as Textual messages; posted from the engine's worker thread."""

from __future__ import annotations

from textual.message import Message

from engine.core.events import Event, Progress, SnapshotChanged
from engine.core.views import RunSnapshot


class EngineEvent(Message):
    """Any engine event, delivered on the UI thread."""

    def __init__(self, event: Event, forwarded: bool = False) -> None:
        super().__init__()
        self.event = event
        self.forwarded = forwarded  # re-posted by the app to its main screen


class ProgressEvent(EngineEvent):
    """Progress for one table; a backlog collapses to the newest."""

    event: Progress

    def can_replace(self, message: Message) -> bool:
        return (
            isinstance(message, ProgressEvent)
            and message.event.step_id == self.event.step_id
            and message.event.table == self.event.table
        )


class SnapshotEvent(EngineEvent):
    """The run as it now stands; only the newest matters."""

    event: SnapshotChanged

    @property
    def snapshot(self) -> RunSnapshot:
        return self.event.snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotEvent)


class WorkEnded(Message):
    """The engine worker (a run or a rollback) returned: its outcome, or the error it raised."""

    def __init__(self, group: str, outcome: object, error: BaseException | None) -> None:
        super().__init__()
        self.group = group
        self.outcome = outcome
        self.error = error


def wrap(event: Event, forwarded: bool = False) -> EngineEvent:
    if isinstance(event, Progress):
        return ProgressEvent(event, forwarded)
    if isinstance(event, SnapshotChanged):
        return SnapshotEvent(event, forwarded)
    return EngineEvent(event, forwarded)


class ControlChanged(Message):
    """The detached engine's own state changed (running, idle, paused, throttle)."""

    def __init__(self, control: dict) -> None:
        super().__init__()
        self.state = control

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ControlChanged)


class EngineLeft(Message):
    """The detached engine's stream ended: `outcome` when it said goodbye, None if it died."""

    def __init__(self, outcome: str | None, message: str = "") -> None:
        super().__init__()
        self.outcome = outcome
        self.message = message
