"""A slow watcher never blocks the engine: it falls behind to the latest state and progress,
and keeps a bounded tail of the log. Real sockets (a socketpair), real threads."""

from __future__ import annotations

import json
import socket
import threading
import time

from engine.control import fanout
from engine.control.client import WatchMessage, as_event
from engine.control.fanout import Fanout, Watcher
from engine.control.protocol import progress_message
from engine.core.events import LogLine, Progress


class _NoEngine:
    def snapshot(self):  # what a new watcher gets first; not needed here
        raise RuntimeError("no snapshot in this test")


def test_a_watcher_that_never_reads_does_not_slow_the_engine() -> None:
    engine_end, watcher_end = socket.socketpair()
    engine_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # fills at once
    hub = Fanout(_NoEngine())
    watcher = Watcher(engine_end)
    hub.add(watcher, b'{"type":"control","data":{}}\n')
    sender = threading.Thread(target=watcher.serve, daemon=True)
    sender.start()

    def engine_thread() -> None:  # announcing as fast as it can
        for done in range(1, 20_001):
            hub(Progress("migrate", "table", done, 20_000, 100.0, 1.0))
            hub(LogLine("migrate", "info", f"line {done} " + "x" * 100, ""))

    started = time.monotonic()
    announcer = threading.Thread(target=engine_thread, daemon=True)
    announcer.start()
    announcer.join(10)
    assert not announcer.is_alive(), "the engine was blocked by a watcher that does not read"
    elapsed = time.monotonic() - started
    assert elapsed < 5.0, elapsed  # the stuck socket holds a few KB; 40,000 messages went by
    with watcher._cond:  # bounded mailbox: the latest progress, the newest log lines
        assert len(watcher._progress) == 1
        assert len(watcher._logs) <= fanout.LOG_BACKLOG

    # the watcher reads at last: it gets the newest progress, not 20,000 of them
    watcher_end.settimeout(5)
    reader = watcher_end.makefile("rb")
    last_done = 0
    deadline = time.monotonic() + 10
    while last_done < 20_000:
        assert time.monotonic() < deadline, "the latest progress never arrived"
        message = json.loads(reader.readline())
        if message["type"] == "progress":
            last_done = message["data"]["done"]
    watcher.close()
    engine_end.close()
    watcher_end.close()
    sender.join(5)
    assert not sender.is_alive()


def test_a_progress_message_carries_the_window_and_the_capacity_line() -> None:
    """Issue 21: a watcher's progress event says what the engine's own subscribers see."""
    sent = Progress("migrate-expenses", "t", 5, 10, 2.0, 2.5, (3, 8), "WCU 480/500 RCU 1/-")
    data = json.loads(progress_message(sent))
    got = as_event(WatchMessage(data["type"], data["data"]))
    assert got == sent
