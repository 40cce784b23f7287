"""Issue 21: the steady application writer (`runbook simulate --app-writes`) keeps its rate on a
fixed schedule, writes keys of its own round the tables and companies, and counts a throttle
apart from a failure (never retried away)."""

from __future__ import annotations

import threading

from botocore.exceptions import ClientError

from engine.rehearsal.app_writer import APP_CALLER, AppWriter
from engine.runbook.model import TableSpec


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Stop(threading.Event):
    """Time passes only while the writer waits: a run takes no real time."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock

    def wait(self, timeout: float | None = None) -> bool:
        self.clock.t += timeout or 0.0
        return self.is_set()


class Table:
    def __init__(self) -> None:
        self.items: list[tuple[str, dict]] = []

    def put_item(self, TableName: str, Item: dict) -> dict:  # boto3 names
        self.items.append((TableName, Item))
        if len(self.items) % 4 == 0:
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException"}}, "PutItem"
            )
        if len(self.items) == 7:
            raise ClientError({"Error": {"Code": "ValidationException"}}, "PutItem")
        return {}


def spec(name: str) -> TableSpec:
    return TableSpec(name=name, group="company", items=0, partition_key="companyId",
                     sort_key="expenseId")  # fmt: skip


def test_the_writer_keeps_its_rate_and_counts_throttles() -> None:
    clock, client = Clock(), Table()
    writer = AppWriter(client, [spec("a"), spec("b")], ["c1", "c2"], rate=10, now=clock)
    report = writer.run(Stop(clock), seconds=2.0)
    assert report.sent == 20 and len(client.items) == 20
    assert (report.throttled, report.failed, report.ok) == (5, 1, 14)
    assert report.last_error in ("ProvisionedThroughputExceededException", "ValidationException")
    assert abs(report.seconds - 1.9) < 1e-9  # the 20th write went at 1.9 s
    tables = [t for t, _ in client.items]
    assert tables[:4] == ["a", "b", "a", "b"]
    first = client.items[0][1]
    assert first["companyId"] == {"S": "c1"} and first["writtenBy"] == {"S": APP_CALLER}
    assert first["expenseId"]["S"].startswith("app-")
    assert len({i["expenseId"]["S"] for _, i in client.items}) == 20  # never the same key
    assert "5 throttled, 1 failed" in report.line()


def test_a_stop_ends_the_writer_at_once() -> None:
    clock = Clock()
    stop = Stop(clock)
    stop.set()
    report = AppWriter(Table(), [spec("a")], [], rate=5, now=clock).run(stop)
    assert report.sent == 0
