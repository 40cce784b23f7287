"""migrate_entity throughput, memory and journal size, as ratios measured in the same run.

Run: .venv/bin/python bench/bench_migrate.py [--scale N]

Against an embedded moto server in its own process (as the console uses it):
- baseline: the naive script (Scan, then an unconditional PutItem per item) into a scratch table;
- migrate_entity with 1 segment and with 4 segments (conditional writes, checkpoints, ledger);
- peak Python memory and journal size of migrate_entity at two table sizes (4x apart), with
  scan pages of PAGE items (a DynamoDB page is at most 1 MB; memory is bounded by pages, so a
  ratio near 1 means memory and journal do not grow with the table).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine import dynamo
from engine.actions import registry
from engine.clock import Clock
from engine.context import ActionContext
from engine.embedded import start_world, stop_world
from engine.journal import Journal, JournalStore, RunMeta, Target
from engine.loader import default_runbook_path, load_runbook
from engine.model import Runbook
from engine.seed import create_table

MIGRATION_TS = "2026-11-29T00:00:00Z"
PAGE = 100  # items per scan page in the memory run, so both sizes span several full pages


def new_journal(rb: Runbook) -> Journal:
    run = RunMeta(
        runbook_id=rb.runbook.id,
        runbook_sha256="0" * 64,
        operator="bench",
        target=Target(kind="embedded", identity="bench", region=rb.runbook.region),
        started_at=MIGRATION_TS,
        migration_ts=MIGRATION_TS,
    )
    return Journal(run=run)


def run_action(
    rb: Runbook,
    conn: Any,
    store: JournalStore,
    journal: Journal,
    step_id: str,
    name: str,
    params: dict[str, Any],
) -> dict[str, Any]:
    action = registry()[name]
    ctx = ActionContext(
        step_id=step_id,
        runbook=rb,
        journal=journal,
        state=journal.step(step_id),
        clients=conn.client,
        clock=Clock(1.0),
        artifacts_dir=store.artifacts_dir,
        emit=lambda _event: None,
        save=lambda: store.save(journal),
        is_embedded=True,
        operator="bench",
    )
    summary = action.run(ctx, action.params.model_validate(params))
    journal.step(step_id).status = "done"
    store.save(journal)
    return summary


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def naive_copy(conn: Any, source: str, scratch: str) -> int:
    ddb = conn.client("dynamodb")
    n = 0
    for page, _ in dynamo.scan_pages(ddb, source):
        for item in page:
            ddb.put_item(TableName=scratch, Item=dynamo.to_dynamo(item))
            n += 1
    return n


def world(rb: Runbook, tmp: Path, scale: int) -> tuple[Any, Path]:
    record = tmp / f"world-{scale}.embedded.toml"
    conn, _ = start_world(record, rb, scale=scale)
    return conn, record


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=400, help="legacy items = plan counts x N")
    args = parser.parse_args()
    rb = load_runbook(default_runbook_path()).runbook
    entity = next(e for e in rb.entities if e.name == "expenses")
    tables = {t.name: t for t in rb.inventory.tables}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        conn, record = world(rb, tmp, args.scale)
        try:
            ddb = conn.client("dynamodb")
            n = dynamo.count_items(ddb, entity.source)
            scratch = tables[entity.source].model_copy(update={"name": "bench-scratch"})
            create_table(ddb, scratch)
            base_s, _ = timed(lambda: naive_copy(conn, entity.source, "bench-scratch"))
            rates = {}
            for segments in (1, 4):
                store = JournalStore(tmp / f"seg{segments}" / "journal.toml")
                journal = new_journal(rb)
                run_action(rb, conn, store, journal, "map", "company_mapping", {"apply": True})
                ddb.delete_table(TableName=entity.target)
                create_table(ddb, tables[entity.target])
                seconds, summary = timed(
                    lambda s=segments, st=store, j=journal: run_action(
                        rb,
                        conn,
                        st,
                        j,
                        "migrate",
                        "migrate_entity",
                        {"entity": "expenses", "segments": s},
                    )
                )
                assert summary["scanned"] == n, summary
                rates[segments] = n / seconds
            base_rate = n / base_s
            print(f"{n:,} legacy expenses on an embedded moto server (own process)")
            print(f"  naive scan + unconditional PutItem: baseline ({base_rate:,.0f} items/s)")
            for segments, rate in rates.items():
                print(
                    f"  migrate_entity, {segments} segment(s): {rate / base_rate:.2f}x baseline "
                    f"({rate:,.0f} items/s)"
                )
        finally:
            stop_world(record)

        peaks = {}
        sizes = {}
        for scale in (args.scale // 4 or 1, args.scale):
            conn, record = world(rb, tmp, scale)
            try:
                store = JournalStore(tmp / f"mem{scale}" / "journal.toml")
                journal = new_journal(rb)
                run_action(rb, conn, store, journal, "map", "company_mapping", {"apply": True})
                tracemalloc.start()
                run_action(
                    rb,
                    conn,
                    store,
                    journal,
                    "migrate",
                    "migrate_entity",
                    {"entity": "expenses", "segments": 4, "page_size": PAGE},
                )
                peaks[scale] = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                sizes[scale] = store.path.stat().st_size
            finally:
                stop_world(record)
        small, large = sorted(peaks)
        print(
            f"  table 4x larger: peak memory {peaks[large] / peaks[small]:.2f}x, "
            f"journal size {sizes[large] / sizes[small]:.2f}x "
            f"({peaks[small] / 1e6:.1f} -> {peaks[large] / 1e6:.1f} MB, "
            f"{sizes[small]:,} -> {sizes[large]:,} B)"
        )


if __name__ == "__main__":
    main()
