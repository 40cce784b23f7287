"""Shared worlds and runs: a journal, a moto server on loopback, a seeded endpoint or Engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from engine.aws.target import Connection
from engine.rehearsal.seed import seed_world
from engine.rehearsal.world import EMBEDDED
from engine.runbook.model import Runbook
from engine.state.journal import Journal, JournalStore, RunMeta, Target

if TYPE_CHECKING:
    from engine.run.engine import Engine

MIGRATION_TS = "2024-12-01T10:00:00Z"


def new_journal(runbook: Runbook, migration_ts: str = MIGRATION_TS) -> Journal:
    run = RunMeta(
        runbook_id=runbook.runbook.id,
        runbook_sha256="0" * 64,
        operator="tester",
        target=Target(kind="embedded", identity="world-test", region="us-east-1"),
        started_at=migration_ts,
        migration_ts=migration_ts,
    )
    return Journal(run=run)


@contextmanager
def fresh_moto_server() -> Iterator[str]:
    """A moto server on loopback (its own thread) with an empty world; yields its URL."""
    import logging
    import socket
    import urllib.request

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    # moto's backends are per process: start every test from an empty world
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"))
    try:
        yield url
    finally:
        server.stop()


def seed_endpoint(endpoint: str, rb: Runbook) -> Connection:
    from engine.aws.target import local_connection

    conn = local_connection(endpoint, "us-east-1")
    seed_world(conn, rb, "world-endpoint")
    return conn


def seeded_engine(
    aws: Connection, journal_path: Path, runbook_path: Path, world_id: str, time_scale: float
) -> Engine:
    """An Engine on a freshly seeded moto world, driven by alice, as the console would open it."""
    from engine.aws.target import TargetSpec, identify
    from engine.plan.loader import load_runbook
    from engine.run.core import EngineOptions
    from engine.run.engine import Engine
    from engine.session import journals

    loaded = load_runbook(runbook_path)
    seed_world(aws, loaded.runbook, world_id)
    journal = journals.new_journal(loaded, identify(TargetSpec(), aws, world_id), "alice")
    return Engine(
        loaded.runbook,
        journal,
        JournalStore(journal_path),
        aws.client,
        EngineOptions(operator="alice", time_scale=time_scale, world=EMBEDDED),
    )
