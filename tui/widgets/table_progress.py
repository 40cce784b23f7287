"""One progress bar per table: done/total, items/s and ETA."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.clock import Clock
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Label, ProgressBar

from tui.format import progress_text


class TableRow(Vertical):
    """Two lines: the table's name, then its bar with done/total, rate and ETA."""

    def __init__(self, table: str, clock: Clock | None = None) -> None:
        super().__init__(classes="table-row")
        self.table = table
        # children exist before mount, so an update that races the mount is not lost
        self.bar = ProgressBar(
            show_eta=False, show_percentage=False, classes="table-bar", clock=clock
        )
        self.figures = Label("", classes="table-figures")
        self.done, self.total = 0, None

    def compose(self) -> ComposeResult:
        yield Label(self.table, classes="table-name")
        with Horizontal(classes="table-line"):
            yield self.bar
            yield self.figures

    def set_progress(
        self,
        done: int,
        total: int | None,
        rate: float,
        eta: float | None,
        in_flight: tuple[int, int] | None = None,
    ) -> None:
        self.done, self.total = done, total
        self.bar.update(total=total if total else None, progress=done)
        self.figures.update(progress_text(done, total, rate, eta, in_flight))


class ProgressPanel(VerticalScroll):
    """Rows appear as tables report; cleared when another step becomes current."""

    def __init__(self, clock: Clock | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.clock = clock
        self.step_id: str | None = None
        self.rows: dict[str, TableRow] = {}

    def show_step(self, step_id: str | None) -> None:
        if step_id == self.step_id:
            return
        self.step_id = step_id
        self.rows = {}
        self.remove_children()

    def set_progress(
        self,
        table: str,
        done: int,
        total: int | None,
        rate: float = 0.0,
        eta: float | None = None,
        in_flight: tuple[int, int] | None = None,
    ) -> None:
        row = self.rows.get(table)
        if row is None:
            row = self.rows[table] = TableRow(table, self.clock)
            self.mount(row)
        row.set_progress(done, total, rate, eta, in_flight)

    def settle(self, step_id: str) -> None:
        """The step stopped: keep done/total, drop the rate and ETA."""
        if step_id == self.step_id:
            for row in self.rows.values():
                row.set_progress(row.done, row.total, 0.0, None)
