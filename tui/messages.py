"""Engine events as Textual messages; posted from the engine's worker thread."""

from __future__ import annotations

from textual.message import Message

from engine.events import Event, Progress


class EngineEvent(Message):
    """Any engine event, delivered on the UI thread."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class ProgressEvent(EngineEvent):
    """Progress for one table; a backlog collapses to the newest."""

    event: Progress

    def can_replace(self, message: Message) -> bool:
        return (
            isinstance(message, ProgressEvent)
            and message.event.step_id == self.event.step_id
            and message.event.table == self.event.table
        )


def wrap(event: Event) -> EngineEvent:
    return ProgressEvent(event) if isinstance(event, Progress) else EngineEvent(event)
