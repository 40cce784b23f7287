"""The console under load: event-loop lag while a real migration updates its bars, and cold
start to the first frame.

Lag: the real RunbookApp runs headless (App.run_test, 80x24) while migrate_entity runs in a
thread of the same process against the moto server, emitting through the Engine exactly as the
engine worker does (pages of 100 items, so progress events come as fast as it can make them).
A coroutine on the app's loop sleeps 20 ms at a time and records how late it wakes.

Cold start: `python -m bench.ui first-frame URL` in a fresh process; the parent times the
spawn to the line printed once the first screen has been composed and painted.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.world import prepared_journal, run_action
from engine.aws.target import local_connection
from engine.plan.loader import default_runbook_path, load_runbook
from engine.run.core import EngineOptions
from engine.run.engine import Engine
from engine.session import journals
from engine.state.journal import JournalStore, Target
from tui.app import RunbookApp

TICK = 0.02


def _engine(url: str, workdir: Path) -> Any:
    loaded = load_runbook(default_runbook_path())
    conn = local_connection(url, "us-east-1")
    target = Target(kind="endpoint", identity=url, region="us-east-1", endpoint_url=url)
    journal = journals.new_journal(loaded, target, "bench")
    store = JournalStore(workdir / "journal.toml")
    return Engine(loaded.runbook, journal, store, conn.client, EngineOptions(operator="bench"))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _lag(url: str, workdir: Path) -> dict[str, float]:
    engine = _engine(url, workdir)
    app = RunbookApp(engine, greet=False)
    lags: list[float] = []
    events = [0]
    done = threading.Event()

    def emit(event: Any) -> None:
        events[0] += 1
        engine.emit(event)

    def migrate() -> None:
        try:
            conn = _Conn(engine.clients)
            store, journal = prepared_journal(engine.runbook, conn, workdir / "migrate")
            run_action(
                engine.runbook,
                conn,
                store,
                journal,
                "migrate-expenses",
                "migrate_entity",
                {"entity": "expenses", "segments": 4, "page_size": 100},
                emit=emit,
            )
        finally:
            done.set()

    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        worker = threading.Thread(target=migrate)
        t0 = time.perf_counter()
        worker.start()
        loop = asyncio.get_running_loop()
        while not done.is_set():
            before = loop.time()
            await asyncio.sleep(TICK)
            lags.append(max(0.0, loop.time() - before - TICK))
        seconds = time.perf_counter() - t0
        worker.join()
        await pilot.pause()
    return {
        "p99_ms": 1000 * _percentile(lags, 0.99),
        "median_ms": 1000 * statistics.median(lags),
        "progress_events": events[0],
        "seconds": seconds,
    }


class _Conn:
    """run_action wants something with .client(service)."""

    def __init__(self, clients: Any) -> None:
        self.client = clients


def event_loop_lag(url: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(_lag(url, Path(tmp)))


async def _first_frame(url: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = RunbookApp(_engine(url, Path(tmp)), greet=False)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            print("first-frame", flush=True)


def cold_start_seconds(url: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.ui", "first-frame", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("first-frame"):
            elapsed = time.perf_counter() - t0
            proc.wait(30)
            return elapsed
    proc.wait(30)
    raise RuntimeError("the console never painted its first frame")


if __name__ == "__main__":
    if sys.argv[1] == "first-frame":
        asyncio.run(_first_frame(sys.argv[2]))
