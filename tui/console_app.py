"""The console's App as its screens see it (`RunbookApp`, tui/app.py, is the one that is): the
screens sit below the app and never import it."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from textual.clock import Clock
from textual.screen import Screen

from engine.control.client import RemoteEngine
from engine.core.views import RunSnapshot
from engine.run.engine import Engine
from engine.state.lock import Holder
from tui.driver import Driver
from tui.logbook import LogEntry


class ConsoleApp(Protocol):
    driver: Driver
    engine: Engine
    snapshot: RunSnapshot
    read_only: bool
    view_only: bool
    holder: Holder | None
    handoff: Callable[[], RemoteEngine] | None
    handing_over: bool
    quitting: bool
    log_entries: deque[LogEntry]
    ui_clock: Clock | None
    now: Callable[[], datetime]

    @property
    def screen(self) -> Screen[Any]: ...

    def hand_over(self) -> None: ...
    def stop_then_exit(self) -> None: ...
    def add_log_entry(self, entry: LogEntry) -> None: ...
    def push_screen(self, screen: Any, callback: Any = None) -> Any: ...
    def bell(self) -> None: ...
