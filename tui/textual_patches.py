"""Work-arounds for Textual bugs that would freeze the console (Textual 8.2.8).

A frozen console at 2 a.m. is worse than a cosmetic glitch, so these are patched at start.
"""

from __future__ import annotations

from typing import Any

from textual.widgets._toast import Toast

MIN_TOAST_SECONDS = 0.05


def toasts_always_expire() -> bool:
    """Clamp a toast's timer to a small positive delay.

    ToastRack checks that a notification has not expired, then builds its Toast, which reads
    `time_left` again: in between it can turn negative (a screen switch under load). A Timer
    with a negative delay loops without ever awaiting, and the whole event loop spins at
    100 % CPU forever: seen in CI, the console frozen mid-rehearsal (py-spy: Timer._run,
    _interval -0.000086)."""
    if getattr(Toast, "_runbook_clamped", False):
        return True
    textual_init = Toast.__init__

    def __init__(self: Any, notification: Any) -> None:
        textual_init(self, notification)
        self._timeout = max(self._timeout, MIN_TOAST_SECONDS)

    Toast.__init__ = __init__  # type: ignore[method-assign]
    Toast._runbook_clamped = True  # type: ignore[attr-defined]
    return True
