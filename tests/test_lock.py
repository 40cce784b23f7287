"""One driver per journal: a second driver learns who holds it; a dead holder's lock is taken."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.lock import JournalLock, LockedError, is_locked


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
        from engine.lock import JournalLock
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
