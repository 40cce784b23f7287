"""A SQLite artifact copied while the run writes it (engine/state/artifact_copy.py): the copy is
one committed state, whole, never the file's bytes mid-write."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from engine.actions.migrate.ledger import Ledger
from engine.state.artifact_copy import (
    artifact_bytes,
    change_stamp,
    drop_side_files,
    is_side_file,
)


def _rows(data: bytes) -> list[str]:
    db = sqlite3.connect(":memory:")
    db.deserialize(data)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    return [row[0] for row in db.execute("SELECT skey FROM quarantine ORDER BY 1")]


def test_a_ledger_mid_write_is_copied_as_its_last_commit(tmp_path: Path) -> None:
    path = tmp_path / "migrate-expenses.sqlite"
    ledger = Ledger(path, fresh=True)
    for n in range(50):
        ledger.quarantine(f"k{n:03}", "too big", {"n": n, "pad": "x" * 2000})
    ledger.db.commit()
    for n in range(50, 80):  # under way: not committed
        ledger.quarantine(f"k{n:03}", "too big", {"n": n, "pad": "x" * 2000})
    copied = _rows(artifact_bytes(path))
    assert copied == [f"k{n:03}" for n in range(50)]
    # the database file's bytes alone, as a byte copy would send them, lack the commit
    # (it sits in the write-ahead log)
    raw = tmp_path / "raw.sqlite"
    raw.write_bytes(path.read_bytes())
    with sqlite3.connect(raw) as db:
        tables = db.execute("SELECT name FROM sqlite_master").fetchall()
    assert ("quarantine",) not in tables
    ledger.db.commit()
    assert len(_rows(artifact_bytes(path))) == 80
    ledger.close()


def test_a_commit_changes_the_stamp_before_the_database_file_does(tmp_path: Path) -> None:
    path = tmp_path / "migrate-expenses.sqlite"
    ledger = Ledger(path, fresh=True)
    ledger.db.commit()
    before, file_before = change_stamp(path), path.stat().st_mtime_ns
    ledger.quarantine("k1", "too big", {"n": 1})
    ledger.db.commit()
    assert path.stat().st_mtime_ns == file_before  # in the WAL only
    assert change_stamp(path) != before  # yet the copy is due
    ledger.close()


def test_side_files_are_never_artifacts_and_a_replaced_database_loses_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "index.sqlite"
    db = sqlite3.connect(path)
    db.executescript("PRAGMA journal_mode=WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1);")
    sides = [p for p in tmp_path.iterdir() if p != path]
    assert sides and all(is_side_file(p) for p in sides)
    assert not is_side_file(path) and not is_side_file(tmp_path / "quarantine.jsonl")
    db.close()
    (tmp_path / "index.sqlite-wal").write_bytes(b"stale")
    drop_side_files(path)
    assert not (tmp_path / "index.sqlite-wal").exists()


def test_other_artifacts_are_their_bytes(tmp_path: Path) -> None:
    path = tmp_path / "quarantine-expenses.jsonl"
    path.write_bytes(b'{"key": 1}\n')
    assert artifact_bytes(path) == b'{"key": 1}\n'
