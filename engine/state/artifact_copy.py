"""An artifact as a copy of it may be taken while the run writes it (the S3 journal's push).

A SQLite artifact (the migrate ledger, the key index) is written by segment threads between
checkpoints: its file alone, read byte by byte, can be torn mid-commit or miss what sits in its
write-ahead log. It is copied through SQLite's backup API, which reads one committed state.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SQLITE_SUFFIX = ".sqlite"
SIDE_SUFFIXES = ("-wal", "-shm", "-journal")  # SQLite's own files beside a database
BUSY_SECONDS = 60.0  # a writer's commit holds the database briefly; never forever
# bytes 18 and 19 of a database's header: its write and read format, 2 in WAL mode, 1 in
# rollback-journal mode (sqlite.org/fileformat.html)
FORMAT_BYTES = slice(18, 20)
ROLLBACK_FORMAT = b"\x01\x01"


def is_side_file(path: Path) -> bool:
    """A SQLite journal or WAL file: never copied on its own (its database's copy holds it)."""
    return any(path.name.endswith(SQLITE_SUFFIX + side) for side in SIDE_SUFFIXES)


def side_files(path: Path) -> list[Path]:
    return [path.with_name(path.name + side) for side in SIDE_SUFFIXES]


def change_stamp(path: Path) -> tuple[int, ...]:
    """Changes whenever the artifact's content may have: a database's WAL grows before the
    database file itself changes."""
    stamp: list[int] = []
    for part in (path, *side_files(path)) if path.name.endswith(SQLITE_SUFFIX) else (path,):
        try:
            info = part.stat()
        except FileNotFoundError:
            stamp += [-1, -1]
            continue
        stamp += [info.st_size, info.st_mtime_ns]
    return tuple(stamp)


def artifact_bytes(path: Path) -> bytes:
    """The artifact's content; for a database, one committed state of it, whole, as a file of
    its own: in rollback-journal mode, so that it needs no WAL beside it (its writer sets WAL
    again when it opens it)."""
    if not path.name.endswith(SQLITE_SUFFIX):
        return path.read_bytes()
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_SECONDS)
    copy = sqlite3.connect(":memory:")
    try:
        source.backup(copy)
        data = bytearray(copy.serialize())
    finally:
        source.close()
        copy.close()
    if data:
        data[FORMAT_BYTES] = ROLLBACK_FORMAT
    return bytes(data)


def drop_side_files(path: Path) -> None:
    """Before a database is replaced by a copy: a WAL left beside it belongs to the old one,
    and SQLite would replay it into the new."""
    for side in side_files(path):
        side.unlink(missing_ok=True)
