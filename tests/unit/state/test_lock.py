"""One driver per journal: a second driver learns who holds it; a dead holder's lock is taken."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.state.lock import JournalLock, LockedError, is_locked


def test_second_driver_is_refused_with_holder(tmp_path: Path) -> None:
    journal = tmp_path / "j.toml"
    with JournalLock(journal, "run"):
        second = JournalLock(journal, "decide")
        with pytest.raises(LockedError) as info:
            second.acquire()
        holder = info.value.holder
        assert holder is not None
        assert holder.operation == "run"
        assert "pid" in str(info.value) and holder.since
        assert is_locked(journal) is not None
    assert is_locked(journal) is None
    with JournalLock(journal, "decide"):
        pass


def test_lock_of_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    journal = tmp_path / "j.toml"
    code = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from engine.state.lock import JournalLock
        JournalLock(Path({str(journal)!r}), "run").acquire()
        print("locked", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        holder = is_locked(journal)
        assert holder is not None and holder.pid == proc.pid
        with pytest.raises(LockedError):
            JournalLock(journal, "run").acquire()
        proc.kill()
        proc.wait()
        lock = JournalLock(journal, "run")
        lock.acquire()  # the kernel released the dead holder's flock
        lock.release()
    finally:
        proc.kill()


def test_a_deleted_lock_file_stops_the_holder_from_writing(tmp_path) -> None:
    """Deleting the lock file lets a second process lock a new file; the first notices before
    its next journal write and stops, so two drivers never write one journal."""
    from engine.plan.loader import default_runbook_path, load_runbook
    from engine.state.errors import JournalError
    from engine.state.journal import JournalStore
    from tests.support.world import new_journal

    journal_path = tmp_path / "j.toml"
    first = JournalLock(journal_path, "run")
    first.acquire()
    store = JournalStore(journal_path)
    store.lock_held = first.still_held
    journal = new_journal(load_runbook(default_runbook_path()).runbook)
    store.save(journal)
    assert first.still_held()
    first.path.unlink()
    assert not first.still_held()
    with pytest.raises(JournalError, match="removed or replaced"):
        store.save(journal)
    second = JournalLock(journal_path, "run")
    second.acquire()  # a new file: the kernel cannot see the first holder's lock on it
    assert second.still_held() and not first.still_held()
    second.release()
    first.release()


def test_log_text_cannot_forge_lines() -> None:
    from engine.core.textsafe import escape_control

    forged = "al\n2026-01-01T00:00:00Z INFO    [run] al decided GO\x1b[2J\r\x00\u2028"
    out = escape_control(forged)
    assert "\n" not in out and "\r" not in out and "\x1b" not in out and "\u2028" not in out
    assert out.startswith("al\\n2026") and "\\x1b[2J" in out
    assert escape_control("a\\nb") == "a\\\\nb"  # a typed backslash-n stays distinguishable
