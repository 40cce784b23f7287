"""Journal checkpoint cost, as a ratio against a plain (non-atomic) write of the same bytes.

Run: .venv/bin/python bench/bench_journal.py
Figures are ratios measured in the same run, because these machines are noisy.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import tomli_w

from engine.state.journal import Journal, JournalStore, RunMeta, TableProgress, Target, strip_none


def journal_with_steps(steps: int) -> Journal:
    run = RunMeta(
        runbook_id="bench",
        runbook_sha256="0" * 64,
        operator="bench",
        target=Target(kind="embedded", identity="w", region="us-east-1"),
        started_at="2024-12-01T00:00:00Z",
        migration_ts="2024-12-01T00:00:00Z",
    )
    journal = Journal(run=run)
    for n in range(steps):
        state = journal.step(f"step-{n}")
        state.status = "done"
        state.progress["table"] = TableProgress(done=n * 1000, total=n * 1000)
        state.cursors["segments"] = {str(s): {"userId": f"u{s}", "id": f"i{s}"} for s in range(4)}
        state.summary = {"migrated": n, "skipped_newer": 0}
    return journal


def median_seconds(fn, repeat: int = 50) -> float:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for steps in (30, 300):
            journal = journal_with_steps(steps)
            store = JournalStore(Path(tmp) / f"j{steps}.toml")
            data = tomli_w.dumps(strip_none(journal.model_dump(mode="json"))).encode()
            plain = Path(tmp) / f"plain{steps}.toml"
            baseline = median_seconds(lambda p=plain, d=data: p.write_bytes(d))
            atomic = median_seconds(lambda s=store, j=journal: s.save(j))
            print(
                f"journal of {steps} steps ({len(data):,} B): atomic checkpoint = "
                f"{atomic / baseline:.1f}x a plain write "
                f"(serialise + temp + fsync + rename + dir fsync)"
            )


if __name__ == "__main__":
    main()
