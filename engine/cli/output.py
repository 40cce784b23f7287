"""Terminal output: gh-ost-like status lines (Printer), and writes that survive a lost terminal."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from engine.core.events import Alert, Event, LogLine, Progress, StepFinished, StepStarted


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA --:--"
    seconds = int(seconds)
    return f"ETA {seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Printer:
    """gh-ost-like status lines: one per table at most every second, plus log lines."""

    def __init__(self, out: Callable[[str], None]) -> None:
        self.out = out
        self.last: dict[tuple[str, str], float] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, LogLine):
            self.out(f"{event.level.upper():7} [{event.step_id or 'run'}] {event.message}")
        elif isinstance(event, StepStarted):
            verb = "resuming" if event.resumed else "starting"
            self.out(f"==> {verb} {event.step_id}: {event.title} (attempt {event.attempt})")
        elif isinstance(event, StepFinished):
            tail = f": {event.error}" if event.error else ""
            self.out(f"<== {event.step_id} {event.status}{tail}")
        elif isinstance(event, Alert):
            self.out(
                f"!!! ALERT {event.trigger_id}: {event.message} "
                f"(measured {event.measured:g}, threshold {event.threshold:g}); "
                + (
                    f"rolling back automatically: {event.proposed_rollback}"
                    if event.auto_rollback
                    else f"proposed rollback: {event.proposed_rollback}"
                )
            )
        elif isinstance(event, Progress):
            key = (event.step_id, event.table)
            now = time.monotonic()
            final = event.total is not None and event.done >= event.total
            if not final and now - self.last.get(key, 0.0) < 1.0:
                return
            self.last[key] = now
            total = f"{event.total:,}" if event.total is not None else "?"
            flight = event.in_flight
            pct = f" ({100 * event.done / event.total:.1f}%)" if event.total else ""
            speed = (
                "starting"
                if event.rate is None
                else f"{event.rate:,.0f} items/s {_fmt_eta(event.eta_seconds)}"
            )
            if flight:  # data steps: writes in flight / the throttle's window
                speed += f" {flight[0]}/{flight[1]} in flight"
            if event.capacity:  # consumed units/s against the budget
                speed += f" {event.capacity}"
            self.out(f"    {event.table}: {event.done:,}/{total}{pct} {speed}")


def silence_terminal() -> None:
    """The terminal is gone (EPIPE, EIO): later writes, and the flush at exit, go nowhere."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            os.dup2(devnull, stream.fileno())
    os.close(devnull)


def _write(stream: Any, line: str) -> bool:
    """Write one line; False (and silence) when the terminal went away. Never raises: an
    output error must not fail a step."""
    try:
        print(line, file=stream, flush=True)
        return True
    except (OSError, ValueError):  # BrokenPipeError, EIO after a hang-up, a closed stream
        silence_terminal()
        return False


def say(line: str) -> bool:
    return _write(sys.stdout, line)


def say_error(line: str) -> bool:
    return _write(sys.stderr, line)
