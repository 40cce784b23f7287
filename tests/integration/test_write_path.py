"""The concurrent write path of migrate_entity (issue 12): a bounded number of conditional writes
in flight whatever the segments hold, AIMD on throttling, the in-flight count on the progress
line, an operator's limit taking effect during a run, and exact counts throughout."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from bench.latency import add_latency
from engine.aws import dynamo
from engine.core.clock import Interrupted
from engine.core.events import Progress
from engine.core.throttle import WriteThrottle
from engine.state.journal import JournalStore
from tests.support.actions import run
from tests.support.write_path import EXPENSES, T_EXPENSES, N, mapped, throttling

PUT = {"write_path": "put"}  # these tests count PutItems (transactions: test_write_transact.py)


def test_throttle_halves_on_throttling_and_grows_back() -> None:
    t = WriteThrottle()
    t.configure(16, ceiling=64)
    assert t.state().window == 16 and t.state().limit == 16
    assert all(t.acquire(0.01) for _ in range(16))
    assert not t.acquire(0.01)  # full: the 17th waits
    t.on_throttle()
    t.on_throttle()
    assert t.state().window == 4 and t.state().throttled == 2
    for _ in range(16):
        t.release()
    grown = []
    for _ in range(200):
        t.on_success()
        grown.append(t.state().window)
    assert grown[0] == 4 and grown[-1] == 16 and grown == sorted(grown)  # additive, capped
    assert t.set_limit(100) == 64  # capped by the HTTP pool
    t.set_limit(3)
    assert t.state().window == 3 and t.state().limit == 3
    t.configure(16, ceiling=64)  # a later step: the operator's choice still stands
    assert t.state().limit == 3
    t.clear_limit()
    assert t.state().limit == 16


def test_acquire_wakes_when_a_slot_frees() -> None:
    t = WriteThrottle(1)
    assert t.acquire(0.01)
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(t.acquire(5.0)))
    waiter.start()
    t.release()
    waiter.join(5.0)
    assert got == [True]


class Concurrency:
    """Observes how many requests of one operation are in flight at once (an observer only)."""

    def __init__(self, client: Any, operation: str = "PutItem") -> None:
        self.now = self.peak = 0
        self.lock = threading.Lock()
        client.meta.events.register(f"before-call.dynamodb.{operation}", self.start)
        client.meta.events.register(f"after-call.dynamodb.{operation}", self.end)

    def start(self, **_: Any) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def end(self, **_: Any) -> None:
        with self.lock:
            self.now -= 1


def test_one_segment_keeps_many_writes_in_flight(aws, make_ctx, runbook):
    ddb, ctx = mapped(aws, make_ctx, runbook)
    add_latency(ddb, 0.01)
    seen = Concurrency(ddb)  # registered first: counts after the delay
    mctx, events = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    m = run(
        mctx,
        "migrate_entity",
        {"entity": "expenses", "segments": 1, "page_size": 50, "in_flight": 12, **PUT},
    )
    assert m["migrated"] == N and m["scanned"] == N
    assert 6 <= seen.peak <= 12  # one segment, yet many writes at once, never above the limit
    flights = [e.in_flight for e in events if isinstance(e, Progress) and e.in_flight]
    assert flights and all(limit == 12 for _, limit in flights)
    assert sorted(i["expenseId"] for p, _ in dynamo.scan_pages(ddb, T_EXPENSES) for i in p) == [
        f"exp-{n:04d}" for n in range(N)
    ]


def test_operator_limit_applies_during_the_run(aws, make_ctx, runbook):
    ddb, ctx = mapped(aws, make_ctx, runbook)
    add_latency(ddb, 0.005)
    mctx, events = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    seen = Concurrency(ddb)

    before: list[int] = []

    def emit(event: Any) -> None:
        events.append(event)
        if not isinstance(event, Progress):
            return
        if event.done >= 100 and not before:
            before.append(seen.peak)
            mctx.throttle.set_limit(2)  # what a key binding or socket command calls
        elif event.done >= 200 and len(before) == 1:
            before.append(seen.peak)
            seen.peak = seen.now  # writes admitted before the change are answered by now

    mctx.emit = emit
    m = run(mctx, "migrate_entity", {"entity": "expenses", "page_size": 50, **PUT})
    assert m["migrated"] == N
    assert before[0] > 2 and 1 <= seen.peak <= 2
    late = [e.in_flight for e in events if isinstance(e, Progress) and e.in_flight][-1]
    assert late[1] == 2


def test_throttling_halves_in_flight_and_counts_stay_exact(aws, make_ctx, runbook):
    ddb, ctx = mapped(aws, make_ctx, runbook)
    sent = throttling(ddb, every=40)
    mctx, events = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    m = run(mctx, "migrate_entity", {"entity": "expenses", "page_size": 40, "in_flight": 16, **PUT})
    assert m["migrated"] == N and m["scanned"] == N and m["quarantined"] == 0
    assert sent[0] > N  # the throttled attempts were retried
    assert mctx.throttle.state().throttled >= (sent[0] // 40) - 1
    windows = [e.in_flight[1] for e in events if isinstance(e, Progress) and e.in_flight]
    assert min(windows) < 16  # the window was cut while throttled
    items = [i for p, _ in dynamo.scan_pages(ddb, T_EXPENSES) for i in p]
    assert len(items) == N


def test_progress_line_shows_rate_and_writes_in_flight() -> None:
    from engine.cli.output import Printer
    from tui.format import progress_text

    lines: list[str] = []
    Printer(lines.append)(Progress("migrate-expenses", EXPENSES, 500, 1000, 250.0, 2.0, (12, 16)))
    assert "250 items/s" in lines[0] and "12/16 in flight" in lines[0]
    Printer(lines.append)(Progress("inventory", EXPENSES, 5, 10, 1.0, 5.0))
    assert "in flight" not in lines[1]
    assert progress_text(500, 1000, 250.0, 2.0, in_flight=(12, 16)).endswith("12/16w")
    assert "w" not in progress_text(500, 1000, 250.0, 2.0).split("ETA")[1]


def test_the_page_read_ahead_waits_until_the_cursor_passed_the_one_before(
    aws, make_ctx, runbook, tmp_path
):
    """What a kill may find written past the cursor on disk is at most one page: at every write
    sent, the items sent minus the items the journal's cursor has passed stay within a page,
    though the window (16) would let the next page's writes start earlier."""
    ddb, ctx = mapped(aws, make_ctx, runbook)
    add_latency(ddb, 0.005)  # many writes in flight at once
    mctx, _ = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    store = JournalStore(tmp_path / "journal.toml")
    sent, ahead, lock = [0], [0], threading.Lock()

    def on_send(**_: Any) -> None:
        with lock:
            sent[0] += 1
            cursors = store.load().steps["migrate-expenses"].cursors if store.exists() else {}
            passed = cursors.get("counts", {}).get("scanned", 0)
            ahead[0] = max(ahead[0], sent[0] - passed)

    ddb.meta.events.register("before-call.dynamodb.PutItem", on_send)
    params = {"entity": "expenses", "segments": 1, "page_size": 50, "in_flight": 16, **PUT}
    assert run(mctx, "migrate_entity", params)["migrated"] == N
    assert 40 < ahead[0] <= 50  # a page's writes run concurrently, the next page's wait


def test_migrate_window_is_k_per_segment(aws, make_ctx, runbook):
    _, ctx = mapped(aws, make_ctx, runbook)
    mctx, events = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    params = {"entity": "expenses", "segments": 3, "page_size": 50, "in_flight": 5}
    assert run(mctx, "migrate_entity", params)["migrated"] == N
    windows = {e.in_flight[1] for e in events if isinstance(e, Progress) and e.in_flight}
    assert windows == {15}  # 5 per segment, 3 segments, one shared window


def test_rollback_deletes_run_concurrently_and_a_stop_keeps_the_count_exact(aws, make_ctx, runbook):
    ddb, ctx = mapped(aws, make_ctx, runbook)
    mctx, _ = make_ctx("migrate-expenses", aws, journal=ctx.journal)
    assert run(mctx, "migrate_entity", {"entity": "expenses"})["migrated"] == N
    # the application updated one migrated item during dual-write: the rollback keeps it
    ddb.update_item(
        TableName=T_EXPENSES,
        Key={"companyId": {"S": "comp-a"}, "expenseId": {"S": "exp-0007"}},
        UpdateExpression="SET updatedAt = :now",
        ExpressionAttributeValues={":now": {"S": "2099-01-01T00:00:00Z"}},
    )
    add_latency(ddb, 0.005)
    seen = Concurrency(ddb, "DeleteItem")
    rctx, _ = make_ctx("rollback-data#0", aws, journal=ctx.journal)
    deleted = [0]

    def stop_after_100(**_: Any) -> None:  # the operator's stop, mid-page
        deleted[0] += 1
        if deleted[0] == 100:
            rctx.clock.stop.set()

    ddb.meta.events.register("after-call.dynamodb.DeleteItem", stop_after_100)
    params = {"entities": ["expenses"], "in_flight": 8}
    with pytest.raises(Interrupted):
        run(rctx, "remove_migrated_items", params)
    ddb.meta.events.unregister("after-call.dynamodb.DeleteItem", stop_after_100)
    left = sum(len(p) for p, _ in dynamo.scan_pages(ddb, T_EXPENSES))
    saved = rctx.journal.step("rollback-data#0").cursors["expenses"]["count"]
    assert saved == N - left  # the count is what was applied, checkpointed on the stop
    assert 100 <= saved < N - 1
    assert 2 <= seen.peak <= 8  # several deletes at once, never above in_flight
    again, _ = make_ctx("rollback-data#0", aws, journal=rctx.journal)
    r = run(again, "remove_migrated_items", params)
    assert r["removed"] == N - 1  # exact across the stop; exp-0007 (the application's) kept
    items = [i for p, _ in dynamo.scan_pages(ddb, T_EXPENSES) for i in p]
    assert [i["expenseId"] for i in items] == ["exp-0007"]
