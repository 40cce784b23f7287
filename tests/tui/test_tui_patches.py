"""Textual work-arounds (tui/textual_patches.py): a toast built for a notification whose time
ran out between Textual's check and the toast froze the whole console (CI, Textual 8.2.8)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

from textual.notifications import Notification
from textual.widgets._toast import Toast

from tui.textual_patches import MIN_TOAST_SECONDS, toasts_always_expire

# The race, made certain: a toast for a notification that expired 0.1 ms ago is mounted in a
# running app, which must go on answering and then remove the toast.
SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, time
    from textual.app import App
    from textual.notifications import Notification
    from textual.widgets._toast import Toast, ToastHolder, ToastRack
    if sys.argv[1] == "patched":
        from tui.textual_patches import toasts_always_expire
        toasts_always_expire()

    async def main():
        app = App()
        async with app.run_test(notifications=True) as pilot:
            app.notify("first", timeout=30)  # the screen's rack exists once it shows one
            await pilot.pause()
            rack = app.screen.query_one(ToastRack)
            late = Notification("late", timeout=1.0, raised_at=time.time() - 1.0001)
            await rack.mount(ToastHolder(Toast(late), id="late"))
            for _ in range(100):
                await pilot.pause(0.05)
                if not rack.query("#late"):
                    print("expired")
                    return

    asyncio.run(main())
    """
)


def run(mode: str, seconds: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=seconds
    )


def test_a_toast_whose_time_ran_out_expires_instead_of_freezing_the_console() -> None:
    assert run("patched", 90).stdout.strip() == "expired"


def test_the_race_is_real_without_the_patch() -> None:
    """Unpatched, the same toast spins the event loop: the app never answers again."""
    try:
        out = run("unpatched", 12)  # patched, the script prints within about 7 s
    except subprocess.TimeoutExpired:
        return  # frozen, as in CI: what the patch prevents
    raise AssertionError(f"Textual no longer freezes (drop the patch?): {out.stdout!r}")


def test_the_clamp() -> None:
    assert toasts_always_expire()
    late = Notification("late", timeout=1.0, raised_at=time.time() - 5.0)
    assert Toast(late)._timeout == MIN_TOAST_SECONDS
    fresh = Notification("fresh", timeout=8.0)
    assert 7.0 < Toast(fresh)._timeout <= 8.0
