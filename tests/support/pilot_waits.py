"""Driving a running Textual app in tests: wait for what the app shows, with a deadline, never a
fixed sleep (a loaded CI machine handles a message later than a quiet one); type text."""

from __future__ import annotations

import time
from collections.abc import Callable


async def until_shown(pilot, condition: Callable[[], object], seconds: float, what: str):
    """Poll an observable condition of the running app, with a deadline; its value."""
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)
    return value


async def settle(pilot) -> None:
    """The app's workers done and its messages handled."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def type_text(pilot, text: str) -> None:
    for char in text:
        await pilot.press(char)


def screen_text(app) -> str:
    """What the app's top screen shows, as plain text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())
