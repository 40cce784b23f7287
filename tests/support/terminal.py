"""A real terminal for end-to-end tests: one tmux server on its own socket, one 80x24 session.

Each start gets a server of its own (`tmux -L name`): on a shared server, a `new-session`
connecting while an earlier close is still stopping that server fails with "server exited
unexpectedly" (seen in CI, both across tests and within one test that starts twice).
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field


@dataclass
class Terminal:
    """One tmux server (its own socket) with one 80x24 session."""

    name: str
    tmux: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.tmux = self._fresh_server()

    def _fresh_server(self) -> list[str]:
        return ["tmux", "-L", f"{self.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"]

    def start(self, command: str, env: dict[str, str] | None = None) -> None:
        self.tmux = self._fresh_server()
        new = [*self.tmux, "new-session", "-d", "-s", "op", "-x", "80", "-y", "24", command]
        subprocess.run(new, check=True, env=env)

    def screen(self) -> str:
        out = subprocess.run(
            [*self.tmux, "capture-pane", "-p", "-t", "op"], capture_output=True, text=True
        )
        return out.stdout

    def keys(self, *keys: str, literal: bool = False) -> None:
        flag = ["-l"] if literal else []
        subprocess.run([*self.tmux, "send-keys", "-t", "op", *flag, *keys], check=True)

    def wait(self, condition, seconds: float, what: str) -> str:
        """Poll the screen until `condition(screen)`; the screen that met it."""
        deadline = time.monotonic() + seconds
        while True:
            text = self.screen()
            if condition(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen:\n{text}")
            time.sleep(0.1)  # a poll interval, not a wait for something to happen

    def wait_for(self, text: str, seconds: float = 40.0) -> str:
        """Poll the screen until it shows `text`; that screen."""
        return self.wait(lambda screen: text in screen, seconds, repr(text))

    def seen(self, condition, seconds: float) -> bool:
        """Whether the screen meets `condition` within `seconds` (no failure if not)."""
        deadline = time.monotonic() + seconds
        while not condition(self.screen()):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)  # a poll interval
        return True

    def close(self) -> None:
        """The terminal goes away: SIGHUP to everything in it, the server ends."""
        subprocess.run([*self.tmux, "kill-server"], capture_output=True)
