"""The throttle of a detached engine, as gh-ost's interactive commands: writes in flight, items
per second and the share of the tables' capacity, set while a migration runs. Keyboard only: tab
moves, enter applies, escape leaves it as it was. A bad value is one line in the box; nothing is
sent."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from engine.core.commands import ThrottleView

MAX_IN_FLIGHT = 1024  # far above any table's useful concurrency: a typo, not a wish
OFF = ("", "off", "none", "-")


class BadThrottle(ValueError):
    """A value the engine would refuse; its message is the one line shown."""


def parse_throttle(in_flight: str, rate: str, share: str = "") -> dict[str, int | float | None]:
    """The fields as the `throttle` command's settings; None = no limit (rate) or the runbook's
    own value (in flight, capacity share). Raises BadThrottle with one line for the operator."""
    return {
        "in_flight": parse_in_flight(in_flight),
        "rate": parse_rate(rate),
        "capacity_share": parse_share(share),
    }


def parse_in_flight(in_flight: str) -> int | None:
    text = in_flight.strip().lower()
    if text in OFF:
        return None
    if not text.isdigit() or not 1 <= int(text) <= MAX_IN_FLIGHT:
        raise BadThrottle(
            f"writes in flight: a whole number from 1 to {MAX_IN_FLIGHT}, or off "
            f"(the runbook's value); not {in_flight.strip()!r}"
        )
    return int(text)


def parse_rate(rate: str) -> float | None:
    text = rate.strip().lower().removesuffix("/s").strip()
    if text in OFF:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value != value or value == float("inf"):  # NaN and inf refused too
        raise BadThrottle(
            f"items/s: a number above 0 (e.g. 200 or 12.5), or off (no limit); not {rate.strip()!r}"
        )
    return value


def parse_share(share: str) -> float | None:
    """The share of the tables' capacity: 0.5 or 50%, above 0 and at most 1; empty/off: None,
    the runbook's own share ([capacity])."""
    text = share.strip().lower()
    if text in OFF:
        return None
    scale = 100.0 if text.endswith("%") else 1.0
    try:
        value = float(text.removesuffix("%").strip()) / scale
    except ValueError:
        value = -1.0
    if not 0 < value <= 1:  # NaN fails this too
        raise BadThrottle(
            f"capacity share: above 0 and at most 1 (0.5, or 50%), or off (the runbook's); "
            f"not {share.strip()!r}"
        )
    return value


def shown(value: Any) -> str:
    return "" if value in (None, 0) else f"{value:g}" if isinstance(value, float) else str(value)


def shown_share(value: float | None) -> str:
    return "" if value is None else f"{value * 100:g}%"


class ThrottleScreen(ModalScreen[dict | None]):
    """Dismisses with the settings to send, or None (escape)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, current: ThrottleView) -> None:
        super().__init__()
        self.current = current  # the engine's `control.throttle` as it last said

    def compose(self) -> ComposeResult:
        now = self.current.text or "rate unlimited, in-flight as the runbook says"
        with Vertical(classes="dialog", id="throttle"):
            yield Static("Throttle the detached engine", classes="dialog-title")
            yield Static(f"Now: {now}", id="throttle-now", classes="dialog-text")
            yield Label("Writes in flight (1-1024; empty/off: the runbook's value)")
            yield Input(shown(self.current.in_flight), placeholder="off", id="in-flight")
            yield Label("Items per second (empty/off: no limit)")
            yield Input(shown(self.current.rate), placeholder="off", id="rate")
            yield Label("Share of the tables' capacity (e.g. 50%; empty/off: the runbook's)")
            yield Input(shown_share(self.current.capacity_share), placeholder="off", id="share")
            yield Static("", id="throttle-error")
            yield Label("tab next field · enter apply · esc cancel", classes="dialog-keys")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            settings = parse_throttle(
                self.query_one("#in-flight", Input).value,
                self.query_one("#rate", Input).value,
                self.query_one("#share", Input).value,
            )
        except BadThrottle as exc:
            line = Text.assemble(("Not applied: ", "bold"), str(exc))  # no markup from input
            self.query_one("#throttle-error", Static).update(line)
            return
        self.dismiss(settings)

    def action_cancel(self) -> None:
        self.dismiss(None)
