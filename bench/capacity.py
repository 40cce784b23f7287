"""`python -m bench --only capacity`: migrate_entity beside a steady application writer, on the
CAPACITY MODEL (bench/capacity_model.py): a provisioned target table of MODEL_WCU write units
with partitions of MODEL_PARTITION_WCU, answered in the client; reads, DescribeTable and
CloudWatch go to moto (the target is provisioned there with the model's units, and the model's
throttles are published as WriteThrottleEvents each second, as DynamoDB publishes them).

Three worlds, one run each, the runbook's step and its `[capacity]` (share 0.5) as they ship,
partitions scaled to the model:
* steady: the application's throttled writes, and the migration's WCU/s against its budget;
* halving: the table's capacity halves mid-run (UpdateTable): how long until the migration
  holds the new budget and the application is no longer throttled;
* skewed: one company holds half of the items: its partition stays under its ceiling, and the
  other companies finish first.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.capacity_model import CapacityModel
from bench.latency import ReadReplay, add_latency
from bench.world import (
    MotoServer,
    entity,
    expense,
    prepared_journal,
    reset_target,
    run_action,
    tables,
)
from engine.aws import dynamo
from engine.aws.target import Connection
from engine.rehearsal.seed import create_table
from engine.runbook.model import Runbook

MODEL_WCU = 1000.0  # the target table's provisioned write units
MODEL_PARTITION_WCU = 400.0  # one partition key's units, scaled with the table
APP_WCU = 200.0  # the application's steady writes: 1 WCU PutItems per second
COMPANIES = [f"cap-{n}" for n in range(6)]
USERS = {f"capuser-{n}": COMPANIES[n // 2] for n in range(12)}  # two users per company
WINDOW = 5  # seconds a rate is judged over
SKEW_SEGMENTS = 8  # capuser-0 (half the items) alone in its segment (moto: md5 of the key)
REQUEST_WCU = 200.0  # the largest request: a transaction of 100 items at 2 WCU


def capacity_runbook(rb: Runbook) -> Runbook:
    """The runbook as it ships, its partitions scaled to the model's."""
    cap = rb.capacity.model_copy(update={"partition_write_units": MODEL_PARTITION_WCU})
    return rb.model_copy(update={"capacity": cap})


def seed(conn: Connection, rb: Runbook, n: int, skewed: bool) -> None:
    """A fresh legacy table of n expenses over twelve users in six companies; skewed: half of
    them belong to the first company's first user."""
    ddb = conn.client("dynamodb")
    specs = tables(rb)
    for spec in rb.inventory.tables:
        if spec.name not in ddb.list_tables().get("TableNames", []):
            create_table(ddb, spec)
    source = entity(rb).source
    ddb.delete_table(TableName=source)
    create_table(ddb, specs[source])
    members = rb.mapping.company_users_table if rb.mapping else ""
    rows = [{"companyId": c, "userId": u, "role": "admin"} for u, c in USERS.items()]
    dynamo.batch_write(ddb, members, dynamo.put_requests(rows))
    users = list(USERS)
    items = []
    for i in range(n):
        user = users[0] if skewed and i % 2 == 0 else users[2 + i % (len(users) - 2)]
        if not skewed:
            user = users[i % len(users)]
        items.append({**expense(i), "userId": user})
    for start in range(0, n, 500):
        dynamo.batch_write(ddb, source, dynamo.put_requests(items[start : start + 500]))


class AppWriter(threading.Thread):
    """The application: APP_WCU PutItems per second on the target, spread over the companies."""

    def __init__(self, conn: Connection, table: str, model: CapacityModel) -> None:
        super().__init__(name="bench-app", daemon=True)
        self.ddb = conn.client("dynamodb")
        model.attach(self.ddb, "app")
        self.table = table
        self.done = threading.Event()

    def run(self) -> None:
        began, n = time.monotonic(), 0
        while not self.done.is_set():
            due = began + n / APP_WCU
            wait = due - time.monotonic()
            if wait > 0 and self.done.wait(wait):
                return
            company = COMPANIES[n % len(COMPANIES)]
            item = {"companyId": company, "expenseId": f"app-{n:08d}", "amount": n}
            throttled = self.ddb.exceptions.ProvisionedThroughputExceededException
            with contextlib.suppress(throttled):  # counted by the model, attempt by attempt
                self.ddb.put_item(TableName=self.table, Item=dynamo.to_dynamo(item))
            n += 1


class ThrottlePublisher(threading.Thread):
    """Each second's throttled requests on the target, published as DynamoDB does."""

    def __init__(self, conn: Connection, table: str, model: CapacityModel) -> None:
        super().__init__(name="bench-cw", daemon=True)
        self.cw, self.table, self.model = conn.client("cloudwatch"), table, model
        self.done = threading.Event()

    def run(self) -> None:
        published = 0
        while not self.done.wait(1.0):
            total = sum(c.throttled for c in self.model.counts.values())
            if total > published:
                metric = {
                    "MetricName": "WriteThrottleEvents",
                    "Dimensions": [{"Name": "TableName", "Value": self.table}],
                    "Value": float(total - published),
                    "Timestamp": datetime.now(UTC),
                }
                self.cw.put_metric_data(Namespace="AWS/DynamoDB", MetricData=[metric])
                published = total


@dataclass
class World:
    model: CapacityModel
    summary: dict[str, Any]
    began: int  # the model's second the migration began
    ended: int  # and ended
    halved_at: int | None


def run_world(
    server: MotoServer,
    rb: Runbook,
    work: Path,
    n: int,
    skewed: bool,
    halve_after: float | None,
    segments: int | None = None,
) -> World:
    seed(server.connection(), rb, n, skewed)
    target = reset_target(server.connection(), rb)
    admin = server.connection().client("dynamodb")
    provisioned = {"ReadCapacityUnits": 10_000, "WriteCapacityUnits": int(MODEL_WCU)}
    admin.update_table(
        TableName=target, BillingMode="PROVISIONED", ProvisionedThroughput=provisioned
    )
    params = dict(rb.step("migrate-expenses").params)
    if segments is not None:
        params["segments"] = segments
    # a first migration, unmeasured and unbounded, records every Scan answer: the measured
    # one replays them, so moto's one core (about 2.5 ms an item per Scan page) is not what
    # paces it; the writes it sends are the model's
    replay = ReadReplay()
    warm = server.connection()
    add_latency(warm.client("dynamodb"), 0.0, replay=replay)
    CapacityModel(target, 1e9, 1e9).attach(warm.client("dynamodb"), "migration")
    store, journal = prepared_journal(rb, warm, work / "warm")
    run_action(rb, warm, store, journal, "migrate-expenses", "migrate_entity", params)
    model = CapacityModel(target, MODEL_WCU, MODEL_PARTITION_WCU)
    conn = server.connection()
    add_latency(conn.client("dynamodb"), 0.0, replay=replay)
    model.attach(conn.client("dynamodb"), "migration")
    store, journal = prepared_journal(rb, conn, work)
    app = AppWriter(server.connection(), target, model)
    publisher = ThrottlePublisher(server.connection(), target, model)
    halved: list[int] = []

    def halve() -> None:
        halved.append(model.second())
        model.set_capacity(MODEL_WCU / 2)
        half = {**provisioned, "WriteCapacityUnits": int(MODEL_WCU / 2)}
        admin.update_table(TableName=target, ProvisionedThroughput=half)

    timer = threading.Timer(halve_after, halve) if halve_after is not None else None
    app.start()
    publisher.start()
    time.sleep(3.0)  # the application alone first: its own rate, the metrics' baseline
    began = model.second()
    if timer is not None:
        timer.start()
    try:
        summary = run_action(rb, conn, store, journal, "migrate-expenses", "migrate_entity", params)
    finally:
        ended = model.second()
        if timer is not None:
            timer.cancel()
        app.done.set()
        publisher.done.set()
        app.join(10)
        publisher.join(10)
    return World(model, summary, began, ended, halved[0] if halved else None)


def _sums(series: dict[int, float], start: int, end: int) -> list[float]:
    """Units in each WINDOW seconds of a per-second series from start to end."""
    return [
        sum(series.get(s, 0.0) for s in range(t, t + WINDOW))
        for t in range(start, max(start + 1, end - WINDOW + 1))
    ]


def bound(rate: float, request: float = 0.0) -> float:
    """What holding `rate` allows in WINDOW seconds, as a token bucket counts it: one second
    of burst, WINDOW seconds at the rate, and (debt) one request admitted at zero."""
    return rate * (WINDOW + 1) + request


def app_throttled(w: World) -> tuple[int, int]:
    """(throttled, requests) of the application while the migration ran."""
    app = w.model.counts["app"]
    throttled = sum(v for s, v in app.throttled_at.items() if w.began <= s <= w.ended)
    seconds = max(1, w.ended - w.began + 1)
    return throttled, int(APP_WCU * seconds)


def migration_share(w: World, budget: float) -> float:
    """The migration's mean WCU/s from its first write to its last (the count and the first
    scan pages before, from moto, are not the budget's), against its budget."""
    units = w.model.counts["migration"].units
    start, end = min(units, default=0), max(units, default=0)
    rate = sum(units.get(s, 0.0) for s in range(start, end + 1)) / max(1, end - start + 1)
    return rate / budget


def settle_seconds(w: World, budget: float) -> float:
    """Seconds from the halving until the migration holds the new budget in every later
    WINDOW seconds (`bound`) and the application is no longer throttled."""
    assert w.halved_at is not None
    units = w.model.counts["migration"].units
    throttled = w.model.counts["app"].throttled_at
    last = w.ended - WINDOW
    for start in range(w.halved_at, last + 1):
        sums = _sums(units, start, w.ended)
        calm = all(throttled.get(s, 0) == 0 for s in range(start, w.ended + 1))
        if all(u <= bound(budget, REQUEST_WCU) for u in sums) and calm:
            return float(start - w.halved_at)
    return float(w.ended - w.halved_at)


def capacity(table: Any, rb: Runbook, n: int, work: Path) -> None:
    rb = capacity_runbook(rb)
    share = rb.capacity.share
    budget = MODEL_WCU * share
    ceiling = MODEL_PARTITION_WCU * share
    server = MotoServer()
    try:
        steady = run_world(server, rb, work / "steady", n, skewed=False, halve_after=None)
        halving = run_world(
            server, rb, work / "halving", int(n * 1.2), skewed=False, halve_after=n / 600
        )
        # a skewed table is migrated with more segments, so that the large company's user has
        # a segment to itself: a small company after it in the same segment would wait behind
        # its pages (a page is written once the one before it is applied: the re-write bound)
        skewed = run_world(
            server, rb, work / "skewed", n, skewed=True, halve_after=None, segments=SKEW_SEGMENTS
        )
    finally:
        server.stop()
    for name, w in (("steady", steady), ("halving", halving), ("skewed", skewed)):
        t, r = app_throttled(w)
        print(
            f"  capacity {name}: {w.summary['migrated']:,} items in {w.ended - w.began} s, "
            f"app throttled {t}/{r}, halvings {w.summary.get('budget_halvings')}, "
            f"hottest {w.summary.get('hottest_companies', [])[:2]}",
            file=sys.stderr,
        )
        units = w.model.counts["migration"].units
        series = [int(units.get(s, 0)) for s in range(w.began, w.ended + 1)]
        print(f"    migration WCU per second: {series}", file=sys.stderr)
    thr, req = (sum(x) for x in zip(app_throttled(steady), app_throttled(skewed), strict=True))
    table.add(
        "CAPACITY MODEL: application writes throttled during the migration (%, steady and "
        "skewed worlds) vs 0.1 %",
        100.0 * thr / max(1, req),
        0.1,
        "<=1.0x",
        "{:,.3f}",
    )
    table.add(
        f"CAPACITY MODEL: migration WCU/s vs its budget ({share:.0%} of {MODEL_WCU:,.0f})",
        migration_share(steady, budget) * budget,
        budget,
        ">=0.8x",
    )
    settle = settle_seconds(halving, budget / 2)
    ht, hr = app_throttled(halving)
    table.add(
        f"CAPACITY MODEL: seconds to settle after the capacity halves mid-run vs 30 s "
        f"(application throttled meanwhile: {ht} of {hr})",
        settle,
        30.0,
        "<=1.0x",
        "{:,.1f}",
    )
    units = skewed.model.company_units
    peak = max(max(_sums(units[c], skewed.began, skewed.ended), default=0.0) for c in units)
    table.add(
        f"CAPACITY MODEL, skewed ({SKEW_SEGMENTS} segments): hottest partition's migration WCU "
        f"in any {WINDOW} s vs its ceiling's ({share:.0%} of {MODEL_PARTITION_WCU:,.0f} WCU/s, "
        "1 s of burst, one request landing late)",
        peak,
        bound(ceiling, REQUEST_WCU),
        "<=1.0x",
    )
    last = skewed.model.last_write
    big = COMPANIES[0]
    others = max((t for c, t in last.items() if c != big), default=0.0)
    table.add(
        "CAPACITY MODEL, skewed: when the other companies' last item landed vs the large "
        "company's (s)",
        others,
        last.get(big, 0.0),
        "<=1.0x",
        "{:,.1f}",
    )
    print(
        f"  capacity: median WCU/s of the steady migration "
        f"{statistics.median(steady.model.counts['migration'].units.values()):,.0f}",
        file=sys.stderr,
    )
