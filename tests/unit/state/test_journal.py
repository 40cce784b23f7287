"""The journal: atomic writes, corruption handling, schema, and size independence."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from engine.state.errors import JournalError
from engine.state.journal import TRAILER, JournalStore, TableProgress
from tests.support.world import new_journal


def test_round_trip_keeps_every_field(tmp_path: Path, runbook) -> None:
    store = JournalStore(tmp_path / "j.toml")
    journal = new_journal(runbook)
    state = journal.step("migrate-expenses")
    state.status = "running"
    state.progress["construction-expenses-multi-table-expenses"] = TableProgress(done=5, total=7)
    state.cursors["segments"] = {"0": {"userId": "u1", "expenseId": "e1"}, "1": None}
    journal.gate("gate-phase3")  # an untouched gate round-trips empty
    store.save(journal)
    loaded = store.load()
    assert (
        loaded.steps["migrate-expenses"].progress["construction-expenses-multi-table-expenses"].done
        == 5
    )
    # None cannot be written to TOML: it is dropped, and a missing cursor reads as "start over"
    assert loaded.steps["migrate-expenses"].cursors["segments"] == {
        "0": {"userId": "u1", "expenseId": "e1"}
    }
    assert loaded.run.migration_ts == journal.run.migration_ts


def test_write_is_atomic_and_private(tmp_path: Path, runbook, monkeypatch) -> None:
    store = JournalStore(tmp_path / "j.toml")
    journal = new_journal(runbook)
    store.save(journal)
    before = store.path.read_bytes()
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600

    def crash(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    journal.step("inventory").status = "done"
    with pytest.raises(OSError):
        store.save(journal)
    # the old journal is intact, and no temp file is left behind
    assert store.path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["j.toml"]


def test_corrupt_journal_is_refused_and_left_untouched(tmp_path: Path, runbook) -> None:
    store = JournalStore(tmp_path / "j.toml")
    store.save(new_journal(runbook))
    raw = store.path.read_bytes()
    truncated = raw[: raw.index(b'migration_ts = "') + 20]  # cut inside a string
    store.path.write_bytes(truncated)
    with pytest.raises(JournalError, match="truncated"):
        store.load()
    assert store.path.read_bytes() == truncated


def test_journal_cut_at_a_line_boundary_is_refused(tmp_path: Path, runbook) -> None:
    """A cut between lines still parses as TOML (an older-looking state); the closing
    checksum line is what proves the file whole."""
    store = JournalStore(tmp_path / "j.toml")
    journal = new_journal(runbook)
    journal.step("backup-tables").status = "done"
    store.save(journal)
    raw = store.path.read_bytes()
    cut = raw[: raw.index(b"[steps.backup-tables]")]
    store.path.write_bytes(cut)
    with pytest.raises(JournalError, match="truncated or was edited"):
        store.load()
    assert store.path.read_bytes() == cut
    store.path.write_bytes(raw.replace(b'status = "done"', b'status = "pending"'))
    with pytest.raises(JournalError, match="truncated or was edited"):
        store.load()
    store.path.write_bytes(raw)
    assert store.load().steps["backup-tables"].status == "done"


def test_schema_mismatch_is_refused(tmp_path: Path) -> None:
    store = JournalStore(tmp_path / "j.toml")
    body = b'schema_version = 1\n[run]\nrunbook_id = "x"\n'
    store.path.write_bytes(body + TRAILER % hashlib.sha256(body).hexdigest().encode())
    with pytest.raises(JournalError, match="does not match the journal schema"):
        store.load()


def test_size_does_not_grow_with_items(tmp_path: Path, runbook) -> None:
    store = JournalStore(tmp_path / "j.toml")
    journal = new_journal(runbook)
    state = journal.step("migrate-expenses")
    sizes = []
    for done in (10, 10_000, 10_000_000):
        state.progress["t"] = TableProgress(done=done, total=done)
        state.summary = {"migrated": done, "skipped_newer": 0}
        store.save(journal)
        sizes.append(store.path.stat().st_size)
    assert max(sizes) - min(sizes) < 20  # only the digits change


def test_audit_trail_is_bounded(runbook) -> None:
    journal = new_journal(runbook)
    for n in range(2000):
        journal.add_audit("op", f"event {n}")
    assert len(journal.audit) == 500
    assert journal.audit[-1].what == "event 1999"
