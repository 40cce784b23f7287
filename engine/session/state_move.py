"""Move a run between this machine and S3 (`runbook state push` / `runbook state pull`).

Atomic for the run: the side the run leaves is marked first (a `.moved` file beside a local
journal, a `<key>.moved` object beside an S3 one), so from then on it refuses to drive; the
journal is written on the other side last, after its log and artifacts, with If-None-Match
(never over another run). A move that fails before that takes its mark back. A move killed in
between leaves the mark naming where the run went: if no journal is there, the mark says how
to drive the old side again. So there are never two journals live for one run.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
from pathlib import Path

from engine.session.journals import archive_journal
from engine.session.remote_state import RemoteState
from engine.state.errors import JournalError
from engine.state.files import private_dir
from engine.state.journal import JournalStore, atomic_write, render_journal
from engine.state.s3_objects import StateObjects


class RunMoved(JournalError):
    """This side of a run was moved away: it refuses to drive."""


def local_mark(journal_path: Path) -> Path:
    return journal_path.with_name(journal_path.name + ".moved")


def remote_mark(remote: RemoteState) -> str:
    return remote.location.key + ".moved"


def refuse_if_moved_here(journal_path: Path) -> None:
    mark = local_mark(journal_path)
    if mark.is_file():
        where = mark.read_text().strip()
        raise RunMoved(
            f"the run of {journal_path} was moved to {where} (`runbook state push`); drive it "
            f"with --journal {where} (if no journal is there, the push did not finish: remove "
            f"{mark} to drive it here again)"
        )


def refuse_if_moved_from(remote: RemoteState) -> None:
    objects: StateObjects = remote.objects
    key = remote_mark(remote)
    if objects.exists(key):
        got = objects.get(key)
        where = got[0].decode("utf-8", "replace").strip() if got else "?"
        raise RunMoved(
            f"the run of {remote.location.url} was moved to {where} (`runbook state pull`); "
            f"drive it there (if no journal is there, the pull did not finish: delete "
            f"{objects.where(key)} to drive it from S3 again)"
        )


def push(local: JournalStore, remote: RemoteState) -> Path | None:
    """Copy the run at `local` to S3 (both sides locked by the caller); the local side then
    refuses to drive, its files kept aside (the folder returned)."""
    if not local.exists():
        raise JournalError(f"no run at {local.path} to push")
    if remote.store.exists():
        raise JournalError(f"{remote.location.url} holds a run already; refusing to overwrite it")
    journal = local.load()
    mark = local_mark(local.path)
    atomic_write(mark, remote.location.url.encode() + b"\n")
    try:
        target = remote.store
        if local.artifacts_dir.is_dir():
            shutil.rmtree(target.artifacts_dir, ignore_errors=True)
            shutil.copytree(local.artifacts_dir, target.artifacts_dir, symlinks=True)
        private_dir(target.path.parent)
        if local.log_path.is_file():
            atomic_write(target.log_path, local.log_path.read_bytes())
        target.etag = None  # the first write creates the journal, never replaces one
        target.save(journal)
    except BaseException:
        mark.unlink(missing_ok=True)
        raise
    return archive_journal(local)


def pull(remote: RemoteState, folder: Path) -> Path:
    """Copy the run in S3 (locked and pulled by the caller) into `folder`; S3 then refuses to
    drive it. The local journal's path is returned."""
    source = remote.store
    journal = source.load()
    target = JournalStore(private_dir(folder) / remote.location.name)
    if target.exists() or local_mark(target.path).exists():
        raise JournalError(f"{target.path} exists already; refusing to overwrite a run")
    key = remote_mark(remote)
    where = f"{target.path} on {socket.gethostname()}"
    remote.objects.put(key, where.encode() + b"\n", if_none_match="*")
    try:
        if source.artifacts_dir.is_dir():
            shutil.copytree(source.artifacts_dir, target.artifacts_dir, symlinks=True)
        if source.log_path.is_file():
            atomic_write(target.log_path, source.log_path.read_bytes())
        atomic_write(target.path, render_journal(journal))
    except BaseException:
        with contextlib.suppress(Exception):
            remote.objects.delete(key)
        raise
    return target.path
