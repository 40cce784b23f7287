"""The view-only console: what `runbook serve` starts for each browser (`runbook view`).

Read-only by construction, not by refusal:
- the process never takes (or probes with flock) the journal's lock: who drives is read from
  the lock file's holder record and /proc, so a viewer can never make a driver's start fail;
- the run is opened with `Workspace.open_read_only()` (no connection to the target) and its
  store refuses to save;
- the app is a ViewOnlyApp: only the actions in VIEW_ACTIONS exist on the app and its screens
  (widgets keep their own navigation keys), so no acting key is shown, listed or run, including
  keys added to the console later (an allow-list, not a deny-list).
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any

from textual import events
from textual.app import App
from textual.screen import Screen

from engine.state.journal import Journal, JournalStore
from engine.state.lock import Holder, lock_path_for, read_holder
from tui.app import RunbookApp
from tui.follower import Follower

# What a viewer may do on the app and its screens: look, move, open read-only views, leave.
VIEW_ACTIONS = frozenset(
    {
        "toggle_keys",  # ? lists the keys (only these)
        "gate",  # the gate screen, opened read-only
        "log",
        "step_log",
        "dismiss_alert",  # hides the banner on this screen only
        "focus_filter",  # the log screen's filter
        "only_errors",
        "pop_screen",
        "close",
        "cancel",
        "back",
        "focus_next",
        "focus_previous",
        "copy_text",
        "help_quit",
        "quit",
        "quit_console",
    }
)


def viewable(target: object, action: str) -> bool:
    """Whether a view-only console offers `action` on `target`. A widget's own actions move
    the cursor or scroll; the app's and the screens' are commands, allowed only if listed."""
    if isinstance(target, App | Screen):
        return action in VIEW_ACTIONS
    return True


class ViewOnlyApp(RunbookApp):
    """The console, read-only, with only VIEW_ACTIONS on the app and its screens."""

    view_only = True

    def __init__(self, engine: Any, **kwargs: Any) -> None:
        super().__init__(engine, read_only=True, **kwargs)

    def _viewable(self, action: Any, namespace: Any, namespaces: Any = None) -> bool:
        target, name, _ = self._parse_action(action, namespace, namespaces)
        return viewable(target, name)

    def _check_action_state(self, action: str, default_namespace: Any) -> bool | None:
        if not self._viewable(action, default_namespace):
            return False  # not in the footer, not in the keys list
        return super()._check_action_state(action, default_namespace)

    async def run_action(
        self, action: Any, default_namespace: Any = None, namespaces: Any = None
    ) -> bool:
        if not self._viewable(action, default_namespace or self, namespaces):
            return False
        return await super().run_action(action, default_namespace, namespaces)

    def on_app_blur(self, event: events.AppBlur) -> None:
        # A browser tab starts blurred, and while the app is blurred Textual's footer is not
        # drawn: a watcher would see no keys until a click. Nothing here needs to know.
        event.prevent_default()


class ReadOnlyStore(JournalStore):
    """A journal store that cannot write: the viewer's engine has no way to change the run."""

    def save(self, journal: Journal) -> None:
        raise PermissionError(f"{self.path}: this console is view-only; it never writes")


def _flock_on(inode: int) -> bool | None:
    """Whether the kernel lists a lock on this inode (None: /proc/locks is not readable)."""
    try:
        text = Path("/proc/locks").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 00:2e:5678 0 EOF" ("->" marks a waiter)
        if "->" in fields or len(fields) < 6 or fields[1] != "FLOCK":
            continue
        if fields[5].rsplit(":", 1)[-1] == str(inode):
            return True
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def peek_holder(journal_path: Path) -> Holder | None:
    """Who drives the journal, without taking its lock (not even a shared probe): the driver
    writes its record when it locks and empties it when it unlocks; a driver that died leaves
    a record, so the kernel's lock table (or the pid) must still show it."""
    path = lock_path_for(journal_path)
    try:
        inode = os.stat(path).st_ino
    except OSError:
        return None
    holder = read_holder(path)
    if holder is None:
        return None
    locked = _flock_on(inode)
    if locked is False:
        return None
    if locked is None and holder.host == socket.gethostname() and not _alive(holder.pid):
        return None
    return holder


def view_app(workspace: Any) -> ViewOnlyApp:
    """The view-only console over the workspace's journal, as served (tests drive it too)."""
    engine = workspace.open_read_only()
    engine.store = ReadOnlyStore(workspace.journal_path)
    holder = peek_holder(workspace.journal_path) or workspace.remote_holder()
    # no greeting: a watcher has nothing to choose, and it would cover the view
    app = ViewOnlyApp(engine, holder=holder, follow=workspace.reload, greet=False)
    path = workspace.journal_path

    def who_drives() -> Holder | None:  # never a lock probe here, not even a shared one
        return peek_holder(path) or workspace.remote_holder()

    app.follower = Follower(engine, workspace.reload, holder, None, who_drives)
    return app


def run_view(workspace: Any) -> int:
    """Show the run view-only until the browser (or terminal) goes away."""
    if not os.environ.get("TEXTUAL_DRIVER") and not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("runbook: view needs a terminal or `runbook serve`", file=sys.stderr)
        return 2
    app = view_app(workspace)
    app.run()
    return app.return_code or 0
