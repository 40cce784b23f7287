"""Is a detached engine running for this journal? A live one answers on its socket; a socket
nobody answers while the journal lock is free was left by an engine that died."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from engine.control.client import EngineGone, RemoteEngine
from engine.control.paths import remove_stale, socket_path
from engine.state.lock import is_locked, lock_path_for, read_holder


@dataclass(frozen=True)
class Found:
    engine: RemoteEngine | None  # a live detached engine, or None
    stale_pid: int | None = None  # a dead engine's socket was removed (its pid, when known)


def find_engine(journal_path: Path) -> Found:
    path = socket_path(journal_path)
    if not os.path.lexists(path):
        return Found(None)
    remote = RemoteEngine(path)
    try:
        remote.ping()
        return Found(remote)
    except EngineGone:
        pass
    if is_locked(journal_path) is not None:
        return Found(None)  # an engine starts or stops right now; the lock speaks for it
    holder = read_holder(lock_path_for(journal_path))  # what the dead holder left there
    remove_stale(path)
    return Found(None, stale_pid=holder.pid if holder and holder.pid else 0)
