"""Log lines as the console keeps them: from engine events and from the log file's tail."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text

LEVEL_STYLE = {"debug": "dim", "info": "", "warning": "yellow", "error": "bold red"}
_LINE = re.compile(r"^(\S+) (\w+)\s+\[([^\]]*)\] (.*)$")


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


def parse_line(line: str) -> LogEntry | None:
    match = _LINE.match(line.rstrip("\n"))
    if not match:
        return None
    at, level, step, message = match.groups()
    return LogEntry(at, level.lower(), step, message)


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
