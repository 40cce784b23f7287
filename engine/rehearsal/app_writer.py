"""A steady application writer beside a rehearsal (`runbook simulate --app-writes RATE`): it
writes items into the company-scoped target tables at a fixed rate, as the application does
with dual-write on, and counts how many of its writes were throttled. It signs as APP_CALLER,
so a provisioned world (engine/rehearsal/provisioned.py) counts it apart from the engine.

Every write is one PutItem of a new item (its own key: never an item the migration copies),
tried once: a throttle is counted, never retried away, so "0 throttled" means the table always
had room for the application.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from engine.runbook.model import Runbook, TableSpec

APP_CALLER = "application"  # the access key id it signs with
THROTTLED = ("ProvisionedThroughputExceededException", "ThrottlingException")


@dataclass
class WriterReport:
    rate: float
    sent: int = 0
    ok: int = 0
    throttled: int = 0
    failed: int = 0
    seconds: float = 0.0
    by_table: dict[str, int] = field(default_factory=dict)  # items written, per table
    last_error: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "sent": self.sent,
            "ok": self.ok,
            "throttled": self.throttled,
            "failed": self.failed,
            "seconds": round(self.seconds, 2),
            "by_table": self.by_table,
            "last_error": self.last_error,
        }

    def line(self) -> str:
        achieved = self.sent / self.seconds if self.seconds else 0.0
        text = (
            f"application writes: {self.sent:,} in {self.seconds:.1f} s ({achieved:.1f}/s, "
            f"asked {self.rate:g}/s): {self.throttled:,} throttled, {self.failed:,} failed"
        )
        return text + (f" (last: {self.last_error})" if self.last_error else "")


def application_client(endpoint_url: str, region: str) -> Any:
    """DynamoDB as the application reaches it: its own key, one attempt per write."""
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=APP_CALLER,
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def app_tables(runbook: Runbook) -> list[TableSpec]:
    """The entities' company-scoped target tables: where the application dual-writes."""
    specs = {t.name: t for t in runbook.inventory.tables}
    return [specs[e.target] for e in runbook.entities if e.target in specs]


class AppWriter:
    """Writes `rate` items per second round the tables and companies, from the calling
    thread, until `stop` is set or `seconds` have passed."""

    def __init__(
        self,
        client: Any,
        tables: list[TableSpec],
        companies: list[str],
        rate: float,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or not tables:
            raise ValueError("the application writer needs a positive rate and a table")
        self.client, self.tables, self.rate, self.now = client, tables, rate, now
        self.companies = companies or ["comp-app"]
        self.run_id = f"{int(time.time() * 1000) % 10**8:08d}"  # keys never repeat across runs

    def item(self, spec: TableSpec, n: int) -> dict[str, Any]:
        company = self.companies[n % len(self.companies)]
        own = f"app-{self.run_id}-{n:07d}"
        item = {spec.partition_key: {"S": company if spec.sort_key else own}}
        if spec.sort_key:
            item[spec.sort_key] = {"S": own}
        return {**item, "writtenBy": {"S": APP_CALLER}, "amount": {"N": str(n % 1000)}}

    def run(self, stop: threading.Event, seconds: float | None = None) -> WriterReport:
        report = WriterReport(rate=self.rate)
        began = self.now()
        n = 0
        while not stop.is_set():
            due = n / self.rate  # a fixed schedule: a slow answer is caught up, not skipped
            if seconds is not None and due >= seconds:
                break
            wait = began + due - self.now()
            if wait > 0 and stop.wait(wait):
                break
            spec = self.tables[n % len(self.tables)]
            self._write(spec, self.item(spec, n), report)
            n += 1
        report.seconds = self.now() - began
        return report

    def _write(self, spec: TableSpec, item: dict[str, Any], report: WriterReport) -> None:
        report.sent += 1
        try:
            self.client.put_item(TableName=spec.name, Item=item)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in THROTTLED:
                report.throttled += 1
            else:
                report.failed += 1
            report.last_error = code
            return
        except BotoCoreError as exc:  # the world went away, a timeout
            report.failed += 1
            report.last_error = type(exc).__name__
            return
        report.ok += 1
        report.by_table[spec.name] = report.by_table.get(spec.name, 0) + 1
