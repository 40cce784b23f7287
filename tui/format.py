"""Pure formatting for the console: status glyphs, durations, rates, ETA. No Textual here."""

from __future__ import annotations

from datetime import UTC, datetime

# Distinct glyphs, so status reads without colour (NO_COLOR, monochrome terminals).
STATUS_GLYPH = {
    "pending": "·",
    "running": "▶",
    "done": "✔",
    "failed": "✖",
    "interrupted": "‖",
    "rolled_back": "↺",
    "waiting": "⏸",
}
GATE_GLYPH = {"GO": "◆", "NO-GO": "✖", None: "◇"}


def hhmm(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%H:%M") if value else "--:--"


def stamp(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def progress_text(
    done: int,
    total: int | None,
    rate: float | None,
    eta: float | None,
    live: bool = True,
    in_flight: tuple[int, int] | None = None,
    capacity: str | None = None,
) -> str:
    """`live`: the step runs now (a rate, or "starting" before there is one to tell).
    `in_flight`: (writes in flight, the throttle's window) of a data step, shown as `12/16w`;
    `capacity`: its consumed units/s against the budget (`WCU 480/500 RCU 120/250`)."""
    total_text = f"{total:,}" if total is not None else "?"
    pct = f" {100 * done / total:.1f}%" if total else ""
    figures = f"{done:,}/{total_text}{pct}"
    if not live:
        return figures
    tail = f" {in_flight[0]}/{in_flight[1]}w" if in_flight else ""
    tail += f" {capacity}" if capacity else ""
    if rate is None:
        return f"{figures} starting{tail}"
    return f"{figures} {rate:,.0f}/s ETA {duration(eta)}{tail}"


def slot_vs_actual(
    slot: str, started: datetime | None, finished: datetime | None, status: str = ""
) -> str:
    end = hhmm(finished) if finished else ("‖ stopped" if status == "interrupted" else "…")
    actual = f"{hhmm(started)}-{end}" if started else "not started"
    return f"planned {slot}  actual {actual}"


def fit_middle(text: str, width: int) -> str:
    """Shorten from the middle: ids differ at their ends (delete-deprecated-functions vs
    delete-deprecated-tables), so both ends stay readable."""
    if len(text) <= width or width < 5:
        return text
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]
