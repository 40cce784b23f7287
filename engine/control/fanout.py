"""Watchers: every subscriber gets the engine's news, and none can slow the engine down.

The engine's thread only drops a message into each watcher's mailbox (never a socket write):
the run's state and each table's progress keep only their latest value, log lines a bounded
queue. Each watcher has its own sender thread; a slow one falls behind to the latest state and
loses old log lines, never blocks anyone. Progress goes out at most PROGRESS_PER_SECOND times
per second per watcher.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import deque
from typing import Any

from engine.control import protocol
from engine.core.events import (
    LogLine,
    Progress,
    SnapshotChanged,
    StepFinished,
    StepStarted,
    as_log_line,
)
from engine.state.journal import utcnow

PROGRESS_PER_SECOND = 4
LOG_BACKLOG = 200
END_FLUSH_SECONDS = 1.0  # at exit, how long slow watchers may take for the last messages


class Watcher:
    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self._cond = threading.Condition()
        self._state: bytes | None = None
        self._control: bytes | None = None
        self._progress: dict[tuple[str, str], bytes] = {}
        self._logs: deque[bytes] = deque(maxlen=LOG_BACKLOG)
        self._end: bytes | None = None
        self._closed = False
        self._last_progress = 0.0
        self.finished = threading.Event()  # its sender thread is done

    # ---- the engine's side: never blocks ---------------------------------------------------

    def offer(self, kind: str, data: bytes, key: tuple[str, str] | None = None) -> None:
        with self._cond:
            if kind == "state":
                self._state = data
            elif kind == "control":
                self._control = data
            elif kind == "progress" and key is not None:
                self._progress[key] = data
            elif kind == "log":
                self._logs.append(data)
            elif kind == "end":
                self._end = data
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    # ---- the sender thread -----------------------------------------------------------------

    def _take(self) -> tuple[list[bytes], bool]:
        """What is due now (waits until something is); (lines, last)."""
        with self._cond:
            while True:
                if self._closed:
                    return [], True
                out: list[bytes] = list(self._logs)
                self._logs.clear()
                for name in ("_control", "_state"):
                    if (data := getattr(self, name)) is not None:
                        out.append(data)
                        setattr(self, name, None)
                wait: float | None = None
                if self._progress:
                    due = self._last_progress + 1.0 / PROGRESS_PER_SECOND
                    now = time.monotonic()
                    if now >= due:
                        out.extend(self._progress.values())
                        self._progress.clear()
                        self._last_progress = now
                    else:
                        wait = due - now
                if self._end is not None and not self._progress:
                    out.append(self._end)
                    return out, True
                if out:
                    return out, False
                self._cond.wait(wait)

    def serve(self) -> None:
        """Send until the watcher leaves or the engine ends (runs in the watcher's thread)."""
        try:
            while True:
                lines, last = self._take()
                if lines:
                    self.conn.sendall(b"".join(lines))
                if last:
                    return
        except OSError:  # the watcher went away
            return
        finally:
            self.close()
            self.finished.set()


class Fanout:
    """An engine subscriber that feeds every watcher's mailbox."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._watchers: list[Watcher] = []

    def add(self, watcher: Watcher, control: bytes) -> None:
        try:
            state = protocol.snapshot_message(self.engine.snapshot())
        except RuntimeError:  # the journal changed under us: the next save sends it
            state = None
        with self._lock:
            self._watchers.append(watcher)
        watcher.offer("control", control)
        if state is not None:
            watcher.offer("state", state)

    def remove(self, watcher: Watcher) -> None:
        with self._lock:
            if watcher in self._watchers:
                self._watchers.remove(watcher)

    def _each(self) -> list[Watcher]:
        with self._lock:
            return list(self._watchers)

    def publish(self, kind: str, data: bytes, key: tuple[str, str] | None = None) -> None:
        for watcher in self._each():
            watcher.offer(kind, data, key)

    def __call__(self, event: Any) -> None:
        """Engine.subscribe target: runs in the engine's threads; cheap, never blocks, never
        raises (what a watcher gets must not fail a step)."""
        if not self._each():
            return
        with contextlib.suppress(Exception):
            self._dispatch(event)

    def _dispatch(self, event: Any) -> None:
        if isinstance(event, Progress):
            self.publish("progress", protocol.progress_message(event), (event.step_id, event.table))
        elif isinstance(event, LogLine):
            self.publish("log", protocol.log_message(event))
        elif isinstance(event, StepStarted | StepFinished) and (
            line := as_log_line(event, utcnow())
        ):
            self.publish("log", protocol.log_message(line))
        if isinstance(event, SnapshotChanged):  # built once by the engine, sent to all
            self.publish("state", protocol.snapshot_message(event.snapshot))

    def end(self, data: bytes, flush_seconds: float = END_FLUSH_SECONDS) -> None:
        """The engine is about to exit: tell every watcher, giving their senders a moment."""
        watchers = self._each()
        for watcher in watchers:
            watcher.offer("end", data)
        deadline = time.monotonic() + flush_seconds
        for watcher in watchers:
            watcher.finished.wait(max(0.0, deadline - time.monotonic()))
