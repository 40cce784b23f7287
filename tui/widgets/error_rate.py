"""The error rate during watch windows: a labelled strip on a fixed scale, limit marked."""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual.widgets import Static

BARS = "▁▂▃▄▅▆▇█"


def strip_text(values: list[float], limit: float, width: int) -> Text:
    """Two lines: figures, then bars scaled to max(2 x limit, highest value) so that an
    all-zero window reads flat and a breach reads tall; bars over the limit are red."""
    shown = values[-max(1, width) :]
    top = max([limit * 2, *shown]) or 1.0
    now = shown[-1] if shown else 0.0
    peak = max(shown, default=0.0)
    text = Text()
    text.append("error rate %", style="bold")
    text.append(f"  now {now:.2f} · max {peak:.2f} · limit {limit:g}\n", style="dim")
    for value in shown:
        level = min(len(BARS) - 1, int(value / top * (len(BARS) - 1) + 0.5))
        text.append(BARS[level], style="bold red" if value > limit else "green")
    return text


class ErrorRateStrip(Static):
    def __init__(self, limit: float, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.limit = limit
        self.values: deque[float] = deque(maxlen=120)
        self.step_id: str | None = None

    def add(self, step_id: str, value: float) -> None:
        if step_id != self.step_id:  # a new watch window starts a new strip
            self.values.clear()
            self.step_id = step_id
        self.values.append(value)
        self.add_class("visible")
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        self.update(strip_text(list(self.values), self.limit, self.size.width or 60))
