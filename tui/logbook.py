"""Log lines as the console keeps them: from engine events and from the log file's tail (read
with the engine's own reader, `engine.core.events.parse_log_line`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text

from engine.core.events import LogLine, parse_log_line

LEVEL_STYLE = {"debug": "dim", "info": "", "warning": "yellow", "error": "bold red"}


@dataclass(frozen=True)
class LogEntry:
    at: str
    level: str
    step: str
    message: str


def render_entry(entry: LogEntry) -> Text:
    text = Text()
    text.append(f"{entry.at[11:19]} ", style="dim")
    text.append(f"{entry.level.upper()[:4]:4} ", style=LEVEL_STYLE.get(entry.level, ""))
    text.append(f"[{entry.step}] ", style="cyan")
    text.append(entry.message, style=LEVEL_STYLE.get(entry.level, ""))
    return text


def entry_of(line: LogLine, at: str) -> LogEntry:
    return LogEntry(line.at or at, line.level, line.step_id or "run", line.message)


def parse_line(text: str) -> LogEntry | None:
    line = parse_log_line(text)
    return entry_of(line, "") if line else None


def read_tail(path: Path, limit: int = 500) -> tuple[list[LogEntry], int]:
    """The last `limit` entries and the file offset to follow from."""
    try:
        data = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return [], 0
    entries = [e for line in data.splitlines()[-limit:] if (e := parse_line(line))]
    return entries, len(data.encode("utf-8"))


def read_new(path: Path, offset: int) -> tuple[list[LogEntry], int]:
    """Entries appended since `offset` (read-only consoles follow the driver's log)."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            chunk = fh.read()
    except OSError:
        return [], offset
    entries = [
        e for line in chunk.decode("utf-8", "replace").splitlines() if (e := parse_line(line))
    ]
    return entries, offset + len(chunk)
