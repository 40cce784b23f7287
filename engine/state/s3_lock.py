"""One driver per S3 journal: a lock object created with `If-None-Match: *` (as Terraform's S3
backend's `use_lockfile`), holding who, host, pid, since and the operation.

A second driver's create fails with 412 and it is told who holds the lock (exit 4). S3 cannot
tell whether that holder still lives (it may be a machine that is gone), so taking a lock over
is explicit: `--take-over` replaces the holder's object with `If-Match` on its ETag, and the
workspace journals whom it took over from. The dispossessed driver, if it still lives, is
stopped at its next checkpoint by the journal's own If-Match (engine/state/s3_journal.py).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import tomllib
import uuid
from datetime import UTC, datetime

import tomli_w

from engine.state.journal import utcnow
from engine.state.lock import Holder, LockedError
from engine.state.s3_location import S3Location, holder_age
from engine.state.s3_objects import (
    ConditionalConflict,
    PreconditionFailed,
    StateObjects,
    StateUnreachable,
)

CONFLICT_TRIES = 3


def parse_holder(raw: bytes) -> Holder | None:
    try:
        data = tomllib.loads(raw.decode("utf-8", "replace"))
        return Holder(**{k: v for k, v in data.items() if k in Holder.__dataclass_fields__})
    except (tomllib.TOMLDecodeError, TypeError):
        return None


def s3_holder(objects: StateObjects, location: S3Location) -> Holder | None:
    """Who holds the S3 journal's lock, or None."""
    if not objects.exists(location.lock_key):
        return None
    got = objects.get(location.lock_key)
    if got is None:
        return None
    return parse_holder(got[0]) or Holder("?", "?", 0, "?", "?")


class S3LockedError(LockedError):
    def __init__(self, url: str, holder: Holder | None) -> None:
        super().__init__(url, holder)
        age = holder_age(holder.since, datetime.now(UTC)) if holder else "?"
        self.args = (f"{self.args[0]}, held for {age}; if that machine is gone, pass --take-over",)


class S3Lock:
    """Held for the lifetime of a driving process (engine/state/lock.py's JournalLock, in S3)."""

    def __init__(
        self, objects: StateObjects, location: S3Location, operation: str, take_over: bool = False
    ) -> None:
        self.objects = objects
        self.location = location
        self.operation = operation
        self.take_over = take_over
        self.etag: str | None = None
        self.taken_from: Holder | None = None  # set when --take-over replaced a holder

    @property
    def url(self) -> str:
        return self.objects.where(self.location.lock_key)

    def _body(self) -> bytes:
        holder = {
            "user": getpass.getuser(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": utcnow(),
            "operation": self.operation,
            # a lock id (as Terraform's): two holders never write equal bytes, so never one ETag
            "id": uuid.uuid4().hex,
        }
        return tomli_w.dumps(holder).encode()

    def acquire(self) -> None:
        key = self.location.lock_key
        for _ in range(CONFLICT_TRIES):
            try:
                self.etag = self.objects.put(key, self._body(), if_none_match="*")
                return
            except ConditionalConflict:
                continue  # a create raced ours: look again
            except PreconditionFailed:
                pass
            got = self.objects.get(key) if self.objects.exists(key) else None
            if got is None:
                continue  # released between the two calls
            holder = parse_holder(got[0]) or Holder("?", "?", 0, "?", "?")
            if not self.take_over:
                raise S3LockedError(self.url, holder)
            try:
                self.etag = self.objects.put(key, self._body(), if_match=got[1])
            except (PreconditionFailed, ConditionalConflict):
                continue  # somebody else moved first: look again
            self.taken_from = holder
            return
        raise S3LockedError(self.url, s3_holder(self.objects, self.location))

    def still_held(self) -> bool:
        return self.etag is not None

    def release(self) -> None:
        """Delete the lock only if it is still this process's (never a taker's)."""
        if self.etag is None:
            return
        # taken over: the object is someone else's now; unreachable: --take-over later
        with contextlib.suppress(PreconditionFailed, ConditionalConflict, StateUnreachable):
            self.objects.delete(self.location.lock_key, if_match=self.etag)
        self.etag = None

    def __enter__(self) -> S3Lock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
