"""Run an action where a stop can abandon it: a call blocked on a hung endpoint must not hold
the operator hostage (a stop is honoured within 2 s, whatever the action is doing)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from engine.core.clock import Interrupted

T = TypeVar("T")
# An action checks the stop between batches (at least every second); past this grace it is
# blocked in a call, and is abandoned: its checkpoint is already on disk, its thread is left.
GRACE_SECONDS = 1.5


def run_abandonable(
    body: Callable[[], T], stop: threading.Event, grace: float = GRACE_SECONDS
) -> T:
    """`body()` in a daemon thread; its result or exception, or Interrupted when a stop was
    requested and `body` did not unwind within `grace` seconds."""
    done = threading.Event()
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = body()
        except BaseException as exc:  # handed to the caller's thread as is
            outcome["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=target, name="engine-action", daemon=True)
    worker.start()
    while not done.wait(0.2):
        if stop.is_set():
            if done.wait(grace):
                break
            raise Interrupted()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
