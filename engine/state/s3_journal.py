"""A journal kept in S3: every checkpoint a PutObject with `If-Match` on the ETag it replaces.

The engine sees a JournalStore whose `path`, `log_path` and `artifacts_dir` are this machine's
working copy (engine/state/s3_location.py); a save writes S3 first, then the copy. Order of a
checkpoint: the artifacts changed since the last one, then the log's new lines (one part
object each), then the journal, so a journal in S3 never names an artifact S3 lacks.

A lost update is impossible: a journal changed behind this process's back (another driver,
a take-over) fails the If-Match with 412, and the run stops in one line, writing nothing. S3
unreachable or slow: the checkpoint holds and retries (said through `on_hold`) until it is
durable, or until the engine stops.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from engine.state.artifact_copy import (
    artifact_bytes,
    change_stamp,
    drop_side_files,
    is_side_file,
)
from engine.state.errors import JournalError
from engine.state.files import private_dir
from engine.state.journal import (
    Journal,
    JournalStore,
    atomic_write,
    parse_journal,
    render_journal,
)
from engine.state.s3_location import S3Location
from engine.state.s3_objects import (
    ConditionalConflict,
    NotModified,
    PreconditionFailed,
    StateObjects,
    StateUnreachable,
)

T = TypeVar("T")
HOLD_DELAYS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)  # seconds between tries of a held checkpoint


def lost_update(url: str, etag: str | None) -> JournalError:
    expected = f"ETag {etag}" if etag else "no journal yet"
    return JournalError(
        f"the journal {url} was changed by another writer (412 Precondition Failed: it is no "
        f"longer the version this driver wrote, {expected}); stopping without overwriting it. "
        "Only one driver per journal: see who holds it with `runbook status`"
    )


class S3JournalStore(JournalStore):
    def __init__(self, location: S3Location, objects: StateObjects, cache_path: Path) -> None:
        super().__init__(cache_path)
        self.location = location
        self.objects = objects
        self.etag: str | None = None  # of the journal version this process read or wrote
        self.stop = threading.Event()  # the engine's stop: a held checkpoint gives up
        self.hold_delays = HOLD_DELAYS
        self._holding = True  # a failed call is retried (False: given up at once)
        self._sent: dict[str, tuple[int, ...]] = {}  # artifact -> its change stamp in S3
        self._log_sent = 0  # bytes of the local log in S3
        self._log_parts = 0

    @property
    def url(self) -> str:
        return self.location.url

    def bind_stop(self, stop: threading.Event) -> None:
        self.stop = stop

    # ---- reading --------------------------------------------------------------------------

    def exists(self) -> bool:
        return self._durable(lambda: self.objects.exists(self.location.key), "read")

    def load(self) -> Journal:
        """The journal as S3 holds it (a 304 reuses the copy read last)."""
        cached = self.etag if self.path.is_file() else None
        try:
            got = self._durable(lambda: self.objects.get(self.location.key, cached), "read")
        except NotModified:
            return super().load()
        if got is None:
            raise JournalError(f"no journal at {self.url}")
        raw, self.etag = got
        journal = parse_journal(raw, self.url)
        private_dir(self.path.parent)
        atomic_write(self.path, raw)
        return journal

    def pull(self) -> None:
        """Make this machine's copy of the log and artifacts S3's (a driver, before it runs)."""
        artifacts = self.location.artifacts_prefix
        for key in self._durable(lambda: self.objects.keys(artifacts), "read"):
            rel = key[len(artifacts) :]
            got = self._durable(lambda k=key: self.objects.get(k), "read")
            if got is None or not rel or rel.endswith("/"):
                continue
            target = self.artifacts_dir / rel
            private_dir(target.parent)
            drop_side_files(target)
            atomic_write(target, got[0])
            self._sent[rel] = change_stamp(target)
        parts = self._durable(lambda: self.objects.keys(self.location.log_prefix), "read")
        remote = b"".join(
            got[0]
            for key in parts
            if (got := self._durable(lambda k=key: self.objects.get(k), "read")) is not None
        )
        local = self.log_path.read_bytes() if self.log_path.is_file() else b""
        if not local.startswith(remote):  # this machine's copy is not the run's: S3's wins
            atomic_write(self.log_path, remote)
        self._log_sent, self._log_parts = len(remote), len(parts)

    # ---- writing --------------------------------------------------------------------------

    def save(self, journal: Journal) -> None:
        self.check_lock()
        body = render_journal(journal)
        self._push_artifacts()
        self._push_log()
        self.etag = self._durable(lambda: self._put_journal(body), "checkpoint")
        private_dir(self.path.parent)
        atomic_write(self.path, body, sync=False)  # this machine's copy: S3 holds the truth

    def flush(self) -> None:
        """The log lines and artifacts written since the last checkpoint, tried once (a
        driver lets go: what does not reach S3 now is lost with this machine, not the run)."""
        self._holding = False
        try:
            self._push_artifacts()
            self._push_log()
        except JournalError as exc:
            if self.on_hold is not None:
                self.on_hold(f"the last log lines did not reach S3: {exc}")
        finally:
            self._holding = True

    def _put_journal(self, body: bytes) -> str:
        key = self.location.key
        try:
            if self.etag is None:
                return self.objects.put(key, body, if_none_match="*")
            return self.objects.put(key, body, if_match=self.etag)
        except PreconditionFailed:
            # a retried PUT whose first answer was lost lands here too: it is ours if S3
            # holds exactly these bytes
            current = self.objects.get(key)
            if current is not None and current[0] == body:
                return current[1]
            raise lost_update(self.url, self.etag) from None

    def _push_artifacts(self) -> None:
        if not self.artifacts_dir.is_dir():
            return
        for path in sorted(self.artifacts_dir.rglob("*")):
            if path.is_symlink() or not path.is_file() or is_side_file(path):
                continue
            rel = path.relative_to(self.artifacts_dir).as_posix()
            stamp = change_stamp(path)  # taken before the copy: a later write sends it again
            if self._sent.get(rel) == stamp:
                continue
            data = artifact_bytes(path)
            key = self.location.artifacts_prefix + rel
            self._durable(lambda k=key, d=data: self.objects.put(k, d), "checkpoint")
            self._sent[rel] = stamp

    def _push_log(self) -> None:
        if not self.log_path.is_file():
            return
        with self.log_path.open("rb") as fh:
            fh.seek(self._log_sent)
            chunk = fh.read()
        if not chunk:
            return
        key = self.location.log_part(self._log_parts)
        try:
            self._durable(lambda: self.objects.put(key, chunk, if_none_match="*"), "checkpoint")
        except PreconditionFailed:
            current = self.objects.get(key)
            if current is None or current[0] != chunk:
                raise lost_update(self.url, self.etag) from None
        self._log_sent += len(chunk)
        self._log_parts += 1

    def _durable(self, call: Callable[[], T], what: str) -> T:
        """`call` until S3 answers; each failed try said through on_hold, then a wait (the
        engine's stop ends the wait: the checkpoint was not written, nothing went on)."""
        tries = 0
        while True:
            try:
                return call()
            except ConditionalConflict:
                reason = "409 ConditionalRequestConflict (a concurrent conditional write)"
            except StateUnreachable as exc:
                reason = f"S3 unreachable or slow ({exc})"
            if self.stop.is_set() or not self._holding:
                raise JournalError(
                    f"{what} not written to {self.url}: {reason}; stopped. The last durable "
                    "checkpoint is the one before; `runbook run` resumes from it"
                )
            delay = self.hold_delays[min(tries, len(self.hold_delays) - 1)]
            tries += 1
            if self.on_hold is not None:
                self.on_hold(f"{what} held at {self.url}: {reason}; retry {tries} in {delay:g} s")
            self.stop.wait(delay)
