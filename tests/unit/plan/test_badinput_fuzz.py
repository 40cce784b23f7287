"""Fuzzing the two readers of operator-supplied files: whatever the bytes, the runbook loader
raises only RunbookInvalid (one line per problem) and the journal reader only JournalError."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.plan.loader import RunbookInvalid, load_runbook
from engine.state.errors import JournalError
from engine.state.journal import TRAILER, JournalStore
from tests.support.paths import MINI_RUNBOOK
from tests.support.world import MIGRATION_TS, new_journal

MINI = MINI_RUNBOOK.read_bytes()
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """A few edits of `original`: cuts, inserted junk, duplicated or swapped slices."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        n = len(data)
        i = draw(st.integers(0, n))
        j = draw(st.integers(i, min(n, i + 80)))
        kind = draw(st.sampled_from(["cut", "insert", "dup", "text"]))
        if kind == "cut":
            del data[i:j]
        elif kind == "insert":
            data[i:i] = draw(st.binary(max_size=20))
        elif kind == "dup":
            data[i:i] = data[i:j]
        else:
            data[i:j] = draw(st.sampled_from([
                b'"', b"[[steps]]\n", b'id = "../x"\n', b"= 1", b"\n[", b'"@group:nope"',
                b"phase = 3\n", b"{", b'step = "nope"', b"\x00", b"\xff",
            ]))  # fmt: skip
    return bytes(data)


@FUZZ
@given(raw=mutated(MINI))
def test_runbook_loader_raises_only_its_own_error(raw: bytes, tmp_path: Path) -> None:
    path = tmp_path / "rb.toml"
    path.write_bytes(raw)
    try:
        loaded = load_runbook(path)
    except RunbookInvalid as exc:
        assert exc.problems
        for problem in exc.problems:
            assert "\n" not in problem.render().strip() or problem.path == "(toml)"
        return
    assert loaded.runbook.runbook.id


def _journal_bytes(tmp_path: Path) -> bytes:
    from engine.plan.loader import load_runbook

    rb = load_runbook(MINI_RUNBOOK).runbook
    journal = new_journal(rb, MIGRATION_TS)
    journal.step("backup-tables").status = "done"
    journal.step("backup-tables").cursors["backups"] = {"mini-legacy": "arn:x"}
    journal.gate("gate-phase2").ticks = {}
    store = JournalStore(tmp_path / "seed.toml")
    store.save(journal)
    return (tmp_path / "seed.toml").read_bytes()


@pytest.fixture(scope="module")
def journal_raw(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _journal_bytes(tmp_path_factory.mktemp("j"))


@FUZZ
@given(data=st.data(), resign=st.booleans())
def test_journal_reader_raises_only_journal_error(
    data: st.DataObject, resign: bool, journal_raw: bytes, tmp_path: Path
) -> None:
    body = journal_raw[: journal_raw.rindex(b"# end of journal")]
    raw = data.draw(mutated(body if resign else journal_raw))
    if resign:  # a valid closing checksum: the TOML and schema checks must hold on their own
        raw = raw + TRAILER % hashlib.sha256(raw).hexdigest().encode()
    path = tmp_path / "j.toml"
    path.write_bytes(raw)
    try:
        JournalStore(path).load()
    except JournalError as exc:
        assert "\n" not in str(exc), str(exc)
    assert path.read_bytes() == raw  # a reader never writes
