"""Typed events the engine emits; the CLI and the TUI both consume them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

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
    rate: float = 0.0  # items per second, over a recent window
    eta_seconds: float | None = None
    in_flight: tuple[int, int] | None = None  # (writes in flight, their limit), data steps


@dataclass(frozen=True)
class LogLine:
    step_id: str | None
    level: Level
    message: str
    at: str = ""


@dataclass(frozen=True)
class StepFinished:
    step_id: str
    status: str  # done | failed | skipped | interrupted | waiting
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


@dataclass(frozen=True)
class WaitingAtGate:
    gate_id: str
    title: str


@dataclass(frozen=True)
class WaitingForAck:
    step_id: str
    title: str


@dataclass(frozen=True)
class MetricSample:
    """A point for a sparkline during watch windows (error rate in %, latency in ms)."""

    step_id: str
    metric: str
    value: float


@dataclass(frozen=True)
class JournalChanged:
    """Any state change was persisted; views re-read the status."""


Event = (
    StepStarted
    | Progress
    | LogLine
    | StepFinished
    | Alert
    | WaitingAtGate
    | WaitingForAck
    | MetricSample
    | JournalChanged
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
