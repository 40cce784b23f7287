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
