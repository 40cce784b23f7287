"""Pure formatting for the console: status glyphs, durations, rates, ETA. No Textual here."""

from __future__ import annotations

from datetime import UTC, datetime

# Distinct glyphs, so status reads without colour (NO_COLOR, monochrome terminals).
STATUS_GLYPH = {
    "pending": "·",
    "running": "▶",
    "done": "✔",
    "failed": "✖",
    "skipped": "↷",
    "rolled_back": "↺",
    "waiting": "⏸",
}
GATE_GLYPH = {"GO": "◆", "NO-GO": "✖", None: "◇"}


def parse_ts(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def hhmm(value: str | None) -> str:
    ts = parse_ts(value)
    return ts.strftime("%H:%M") if ts else "--:--"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def progress_text(
    done: int,
    total: int | None,
    rate: float,
    eta: float | None,
    in_flight: tuple[int, int] | None = None,
) -> str:
    total_text = f"{total:,}" if total is not None else "?"
    pct = f" {100 * done / total:.1f}%" if total else ""
    tail = f" {in_flight[0]}/{in_flight[1]}w" if in_flight else ""  # writes in flight/limit
    return f"{done:,}/{total_text}{pct} {rate:,.0f}/s ETA {duration(eta)}{tail}"


def slot_vs_actual(slot: str, started: str | None, finished: str | None) -> str:
    end = hhmm(finished) if finished else "…"
    actual = f"{hhmm(started)}-{end}" if started else "not started"
    return f"planned {slot}  actual {actual}"


def fit_middle(text: str, width: int) -> str:
    """Shorten from the middle: ids differ at their ends (delete-deprecated-functions vs
    delete-deprecated-tables), so both ends stay readable."""
    if len(text) <= width or width < 5:
        return text
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]
