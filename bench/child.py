"""One migrate step in its own process (peak RSS, journal bytes, SIGKILL and resume), with the
runbook's parameters for migrate-expenses (its write path included).

    python -m bench.child URL WORKDIR [--page-size P] [--segments S] [--record FILE]

Resumes the journal in WORKDIR when there is one. Prints one JSON line: peak RSS (KB), journal
bytes, the step's summary. `--record` appends the expenseId of every item sent (PutItem or in a
TransactWriteItems) to FILE.
"""

from __future__ import annotations

import argparse
import json
import resource
from pathlib import Path
from typing import Any

from bench.world import prepared_journal, run_action, runbook
from engine.aws.target import local_connection
from engine.state.journal import JournalStore


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--page-size", type=int, default=0)
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--record", type=Path)
    args = parser.parse_args()
    rb = runbook()
    conn = local_connection(args.url, "us-east-1")
    store = JournalStore(args.workdir / "journal.toml")
    if store.exists():
        journal = store.load()
    else:
        store, journal = prepared_journal(rb, conn, args.workdir)
    if args.record:
        sink = args.record.open("a", buffering=1)

        def note(params: dict[str, Any], **_: Any) -> None:
            sink.write(params["Item"]["expenseId"]["S"] + "\n")

        def note_transaction(params: dict[str, Any], **_: Any) -> None:
            for entry in params["TransactItems"]:
                sink.write(entry["Put"]["Item"]["expenseId"]["S"] + "\n")

        events = conn.client("dynamodb").meta.events
        events.register("provide-client-params.dynamodb.PutItem", note)
        events.register("provide-client-params.dynamodb.TransactWriteItems", note_transaction)
    # the step as the runbook runs it (its write path too), sized by the flags
    params: dict[str, Any] = {**rb.step("migrate-expenses").params, "segments": args.segments}
    if args.page_size:
        params["page_size"] = args.page_size
    summary = run_action(rb, conn, store, journal, "migrate-expenses", "migrate_entity", params)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"peak_rss_kb": peak_kb, "journal_bytes": store.path.stat().st_size, "summary": summary}
    print(json.dumps(out, default=str), flush=True)


if __name__ == "__main__":
    main()
