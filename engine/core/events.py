"""Typed events the engine emits; the CLI and the TUI both consume them."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from engine.core.textsafe import escape_control

if TYPE_CHECKING:
    from engine.core.views import RunSnapshot

Level = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True)
class StepStarted:
    step_id: str
    title: str
    attempt: int
    resumed: bool = False


@dataclass(frozen=True)
class Progress:
    step_id: str
    table: str
    done: int
    total: int | None
    rate: float | None = None  # items per second over a recent window; None: starting
    eta_seconds: float | None = None
    in_flight: tuple[int, int] | None = None  # (writes in flight, their limit), data steps
    # consumed capacity units/s against the budget, e.g. "WCU 480/500 RCU 120/250"
    capacity: str | None = None


@dataclass(frozen=True)
class LogLine:
    step_id: str | None
    level: Level
    message: str
    at: str = ""


@dataclass(frozen=True)
class StepFinished:
    step_id: str
    status: str  # done | failed | interrupted
    summary: dict = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Alert:
    trigger_id: str
    message: str
    measured: float
    threshold: float
    proposed_rollback: str | None = None
    step_id: str | None = None
    auto_rollback: bool = False  # the engine runs `proposed_rollback` itself, now


@dataclass(frozen=True)
class MetricSample:
    """A point for a sparkline during watch windows (error rate in %, latency in ms)."""

    step_id: str
    metric: str
    value: float


@dataclass(frozen=True)
class RollbackChanged:
    """A rollback started, or ended (done, failed, interrupted)."""

    rollback_id: str
    phase: str
    status: Literal["started", "done", "failed", "interrupted"]
    by: str
    automatic: bool = False  # a trigger ran it (auto_rollback), not a person
    record: int = 0  # its place in the journal's rollbacks: names this run of it
    error: str | None = None


@dataclass(frozen=True)
class RunStopped:
    """`Engine.run` returned: where it stands now (waiting, failed, done, ...)."""

    status: str  # an Outcome's status
    kind: Literal["gate", "step"] | None = None  # what it waits at, when it waits
    node_id: str | None = None
    failed_step: str | None = None
    message: str = ""
    finished: bool = False  # every step of the runbook is done


@dataclass(frozen=True)
class SnapshotChanged:
    """A state change was persisted: the run as it now stands (immutable, serialisable)."""

    snapshot: RunSnapshot


Event = (
    StepStarted
    | Progress
    | LogLine
    | StepFinished
    | Alert
    | MetricSample
    | RollbackChanged
    | RunStopped
    | SnapshotChanged
)
Subscriber = Callable[[Event], None]

SUMMARY_CHARS = 200


def summary_text(summary: dict) -> str:
    """A step summary on one line: its scalar figures (summaries never hold secrets)."""
    pairs = [f"{k}={v}" for k, v in summary.items() if not isinstance(v, (dict, list))]
    text = ", ".join(pairs)
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def as_log_line(event: Event, at: str) -> LogLine | None:
    """Step boundaries as log lines, so the log file and the console's step log tell the whole
    story (failures are logged where they happen, with their error)."""
    if isinstance(event, StepStarted):
        verb = "resuming from the last checkpoint:" if event.resumed else "starting:"
        return LogLine(event.step_id, "info", f"{verb} {event.title} (attempt {event.attempt})", at)
    if isinstance(event, StepFinished) and event.status != "failed":
        figures = summary_text(event.summary)
        level: Level = "warning" if event.status == "interrupted" else "info"
        return LogLine(event.step_id, level, event.status + (f": {figures}" if figures else ""), at)
    return None


# ---- the log file: one format, one writer (Engine), one reader (views) -----------------------

_LINE = re.compile(r"^(\S+) (\w+)\s+\[([^\]]*)\] (.*)$")


def format_log_line(line: LogLine, at: str) -> str:
    """One line of the `.log` file beside the journal (no newline)."""
    message = escape_control(line.message)  # one event, one line
    return f"{line.at or at} {line.level.upper():7} [{line.step_id or 'run'}] {message}"


def parse_log_line(text: str) -> LogLine | None:
    match = _LINE.match(text.rstrip("\n"))
    if not match:
        return None
    at, level, step, message = match.groups()
    lowered = level.lower()
    if lowered not in ("debug", "info", "warning", "error"):
        return None
    return LogLine(None if step == "run" else step, lowered, message, at)  # type: ignore[arg-type]
