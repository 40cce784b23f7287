"""The whole run's log, full screen, filterable."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input, RichLog

from tui.logbook import LogEntry, render_entry


class LogScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("slash", "focus_filter", "Filter"),
        Binding("e", "only_errors", "Errors only"),
    ]

    def __init__(self, entries: Iterable[LogEntry], step: str | None = None) -> None:
        super().__init__()
        self.entries = list(entries)
        self.step = step  # a step's (or a gate's) log: only its own lines
        self.filter_text = ""

    def compose(self) -> ComposeResult:
        what = f"step {self.step}" if self.step else "the whole run"
        yield Input(
            placeholder=f"/ filter the log of {what}: text, step id or level (e.g. error)",
            id="log-filter",
        )
        yield RichLog(id="full-log", wrap=True, markup=False, min_width=20)
        yield Footer()

    def on_mount(self) -> None:
        self._redraw()
        self.query_one(RichLog).focus()

    def add_entry(self, entry: LogEntry) -> None:
        self.entries.append(entry)
        if self._matches(entry):
            self.query_one(RichLog).write(render_entry(entry))

    def _matches(self, entry: LogEntry) -> bool:
        if self.step and entry.step != self.step:
            return False
        needle = self.filter_text.lower()
        return not needle or needle in f"{entry.level} {entry.step} {entry.message}".lower()

    def _redraw(self) -> None:
        log = self.query_one(RichLog)
        log.clear()
        for entry in self.entries:
            if self._matches(entry):
                log.write(render_entry(entry))

    def on_input_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self._redraw()

    def action_focus_filter(self) -> None:
        self.query_one(Input).focus()

    def action_only_errors(self) -> None:
        self.query_one(Input).value = "error"
