"""One progress bar per table: done/total, items/s and ETA."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.clock import Clock
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Label, ProgressBar

from engine.core.views import StepView
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
        rate: float | None,
        eta: float | None,
        live: bool,
        in_flight: tuple[int, int] | None = None,
        capacity: str | None = None,
    ) -> None:
        self.done, self.total = done, total
        self.bar.update(total=total if total else None, progress=done)
        self.figures.update(progress_text(done, total, rate, eta, live, in_flight, capacity))


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
        rate: float | None = None,
        eta: float | None = None,
        live: bool = True,
        in_flight: tuple[int, int] | None = None,  # writes in flight / the throttle's window
        capacity: str | None = None,  # consumed units/s against the budget
    ) -> None:
        row = self.rows.get(table)
        if row is None:
            row = self.rows[table] = TableRow(table, self.clock)
            self.mount(row)
        row.set_progress(done, total, rate, eta, live, in_flight, capacity)

    def show(self, view: StepView | None) -> None:
        """A step as the snapshot has it: a rate and ETA only while it runs."""
        self.show_step(view.id if view else None)
        if view is None:
            return
        live = view.status == "running"
        for table in view.progress:
            self.set_progress(
                table.table,
                table.done,
                table.total,
                table.rate,
                table.eta_seconds,
                live,
                capacity=table.capacity,
            )
