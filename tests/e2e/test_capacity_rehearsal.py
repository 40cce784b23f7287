"""Issue 21, done-when: a rehearsal tried as a new user would, with a steady application writer
and a budget of 50%, completes with no application write throttled.

The embedded world of tests/data/capacity-runbook.toml keeps its company-scoped tables
PROVISIONED at 200 WCU and throttles writes beyond them as DynamoDB does (the migration alone
would take about 2,000 WCU/s on moto). As a user would: `runbook run --until mapping` starts the
world, `runbook simulate --app-writes 70` writes beside it (35% of the capacity), `runbook run
--until migrate-projects` runs the data phase. The companion run at a share of 100% shows the
model is real: there the application's writes are throttled.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from engine.rehearsal.embedded import read_record, record_path_for, stop_world
from engine.rehearsal.provisioned import read_counts
from engine.state.journal import JournalStore
from tests.support.paths import CAPACITY_RUNBOOK

WCU = 200
APP_WRITES = 70  # per second, 1 WCU each: 35% of the tables' capacity
MIGRATES = {"migrate-expenses": ("cr-legacy-expenses", "cr-company-expenses"),
            "migrate-projects": ("cr-legacy-projects", "cr-company-projects")}  # fmt: skip
ENGINE = "testing"  # the access key the engine signs with in the embedded world


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def until(condition, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


@dataclass
class Rehearsal:
    app: dict[str, Any]  # the writer's own report
    counts: dict[str, Any]  # the world's capacity counts
    journal: Path
    url: str


def rehearse(runbook: Path, journal: Path) -> Rehearsal:
    """Start the world, the application writer beside it, then the data phase; stop the
    writer once the last migrate step is done."""
    common = ["--runbook", str(runbook), "--journal", str(journal)]
    started = cli("run", *common, "--until", "mapping", "--yes")
    assert started.returncode == 0, started.stderr
    record = read_record(record_path_for(journal))
    assert record is not None and record.capacity_counts
    counts_file = Path(record.capacity_counts)
    writer = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "simulate", *common, "--app-writes",
         str(APP_WRITES), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        until(lambda: _app(read_counts(counts_file))["requests"] >= 20, 30, "the app to write")
        ran = cli("run", *common, "--until", "migrate-projects", "--yes")
        assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
        writer.send_signal(signal.SIGINT)
        out, err = writer.communicate(timeout=30)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == 0, err
    app = json.loads(out.strip().splitlines()[-1])
    counts = until(
        lambda: (c := read_counts(counts_file)) and _app(c)["requests"] == app["sent"] and c,
        5,
        "the world's counts to catch up",
    )
    return Rehearsal(app, counts, journal, record.url)


def _app(counts: dict[str, Any] | None) -> dict[str, Any]:
    return (counts or {}).get("callers", {}).get("application", {"requests": 0})


def migrated(url: str, table: str) -> int:
    """Items in `table` that the migration wrote (the application's carry `writtenBy`)."""
    ddb = boto3.client(
        "dynamodb", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id=ENGINE, aws_secret_access_key="testing",
    )  # fmt: skip
    pages = ddb.get_paginator("scan").paginate(
        TableName=table, Select="COUNT", FilterExpression="attribute_not_exists(writtenBy)"
    )
    return sum(page["Count"] for page in pages)


def busiest_window(units_by_second: dict[str, float], seconds: int = 5) -> float:
    """The migration's highest mean WCU/s over any `seconds` consecutive seconds."""
    series = {int(s): u for s, u in units_by_second.items()}
    if not series:
        return 0.0
    first, last = min(series), max(series)
    return max(
        sum(series.get(t, 0.0) for t in range(start, start + seconds)) / seconds
        for start in range(first, max(first, last - seconds + 1) + 1)
    )


def test_at_half_the_capacity_no_application_write_is_throttled(tmp_path: Path) -> None:
    began = time.monotonic()
    journal = tmp_path / "half" / "j.toml"
    try:
        run = rehearse(CAPACITY_RUNBOOK, journal)
        steps = JournalStore(journal).load().steps
        budget = WCU * 0.5
        for step_id, (source, target) in MIGRATES.items():
            step = steps[step_id]
            assert step.status == "done", step_id
            assert step.summary["write_budget_wcu"] == budget
            assert migrated(run.url, target) == migrated(run.url, source), step_id
        assert run.app["throttled"] == 0 and run.app["failed"] == 0, run.app
        assert run.app["sent"] >= APP_WRITES * 5  # it wrote beside the whole data phase
        assert _app(run.counts)["throttled"] == 0
        engine = run.counts["callers"][ENGINE]
        assert engine["throttled"] == 0
        # the migration kept to its budget: no 5 s above it (plus the engine's first burst)
        peak = busiest_window(engine["units_by_second"])
        assert peak <= budget * 1.1, (peak, engine["units_by_second"])
        consumed = sum(steps[s].summary["consumed_wcu"] for s in MIGRATES)
        print(
            f"\nmigration: {consumed:.0f} WCU, busiest 5 s {peak:.0f} WCU/s of a budget of "
            f"{budget:.0f}; application: {run.app['sent']} writes in {run.app['seconds']} s, "
            f"{run.app['throttled']} throttled; {time.monotonic() - began:.0f} s"
        )
    finally:
        stop_world(record_path_for(journal))


def test_at_the_whole_capacity_application_writes_are_throttled(tmp_path: Path) -> None:
    """The companion: the same rehearsal with a share of 100% crowds the application out, so
    the model throttles for real and the test above proves something."""
    whole = tmp_path / "whole-runbook.toml"
    whole.write_text(CAPACITY_RUNBOOK.read_text().replace("\nshare = 0.5\n", "\nshare = 1.0\n"))
    journal = tmp_path / "whole" / "j.toml"
    try:
        run = rehearse(whole, journal)
        assert JournalStore(journal).load().steps["migrate-projects"].status == "done"
        assert run.app["throttled"] > 0, run.app
        assert _app(run.counts)["throttled"] == run.app["throttled"]
        print(
            f"\nat 100%: {run.app['throttled']} of {run.app['sent']} application writes throttled"
        )
    finally:
        stop_world(record_path_for(journal))
