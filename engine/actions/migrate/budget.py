"""migrate_entity's capacity budget (issue 21, docs/performance.md "Capacity budget").

The step reads both tables' capacity (billing mode, provisioned units and auto scaling bounds,
or the on-demand maximum / warm throughput), asks every request for its ConsumedCapacity, and
holds what it consumes under `share` of it: write units on the target, read units on the
source scan. Each company (one partition key of the target) is held under `share` of one
partition's units, and may keep at most half the window in flight while others wait.

Every `poll_seconds` a watcher thread reads the capacity again (auto scaling and operators
change it) and the target table's one-minute throttle sums (WriteThrottleEvents,
ThrottledRequests per write operation) and the application's dual-write failures. A minute
above the baseline (the `baseline_minutes` before the step began) halves the budget, whatever
caused it, and says why in the log and on the progress line; each poll without one gives back
`recover_step` of it (AIMD).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from engine.actions.migrate.state import CapacityTotals
from engine.aws import capacity as aws_capacity
from engine.core.buckets import Aimd, CompanyGate, CompanyHeat, UnitBucket, UnitMeter
from engine.core.capacity import (
    Kind,
    TableCapacity,
    budget_units,
    company_ceiling,
    rise_above,
)
from engine.core.clock import Interrupted
from engine.core.context import ActionContext

WAIT_SLICE_SECONDS = 0.1  # waits for units wake up this often to honour a stop
BURST_SECONDS = 0.25  # the table budgets hold this much unused: the table keeps its own burst
REQUESTS_PER_BUDGET = 4  # a request takes at most a quarter of a second's budget (its size)
METRIC_LAG_SECONDS = 60.0  # a one-minute sum is read for a poll plus this much back


class CapacityGovernor:
    def __init__(
        self,
        ctx: ActionContext,
        source: str,
        target: str,
        share: float | None = None,
    ) -> None:
        self.ctx, self.source, self.target = ctx, source, target
        self.spec = ctx.runbook.capacity
        self.step_share = share  # the step's own share (params), else the runbook's
        self.ddb = ctx.client("dynamodb")
        self.aas = ctx.client("application-autoscaling")
        self.cw = ctx.client("cloudwatch")
        self.write = UnitBucket(burst_seconds=BURST_SECONDS)
        self.read = UnitBucket(burst_seconds=BURST_SECONDS)
        self.written = UnitMeter()
        self.scanned = UnitMeter()
        self.aimd = Aimd(self.spec.recover_step)
        self.companies = CompanyGate(None)
        self.heat = CompanyHeat()  # WCU per company per second
        self.items = CompanyHeat()  # items per company per second
        self.capacity: dict[str, TableCapacity] = {}
        self.budget: dict[Kind, float | None] = {"read": None, "write": None}
        self.backoffs = 0
        self.began = datetime.now(UTC)
        self.queries = aws_capacity.throttle_queries([target], ctx.runbook.monitoring)
        self.baseline: dict[str, list[float]] = {}
        self._acted: set[tuple[str, datetime]] = set()  # minutes already weighed: once each
        self._polled = 0.0  # when the metrics were last read (monotonic)
        self._done = threading.Event()
        self._watcher: threading.Thread | None = None
        self._said: set[str] = set()
        self._applied_share: float | None = None

    # --- the budget ----------------------------------------------------------------------

    def share(self) -> float:
        """The operator's share (`runbook throttle --capacity-share`), else the step's, else
        the runbook's."""
        override = self.ctx.throttle.capacity_share
        if override is not None:
            return override
        return self.step_share if self.step_share is not None else self.spec.share

    def refresh(self) -> None:
        """Read both tables' capacity again and set the budgets (times the AIMD factor)."""
        for table in dict.fromkeys((self.source, self.target)):
            try:
                self.capacity[table] = aws_capacity.read_capacity(self.ddb, self.aas, table)
            except (ClientError, BotoCoreError) as exc:
                self._say_once(f"capacity-{table}", f"{table}: capacity unread ({exc})", "warning")
        self.apply()

    def apply(self) -> None:
        share, factor = self.share(), self.aimd.factor
        self._applied_share = share
        spec = self.spec
        write = budget_units(
            self.capacity.get(self.target), "write", share, spec.on_demand_write_units
        )
        read = budget_units(
            self.capacity.get(self.source), "read", share, spec.on_demand_read_units
        )
        self.budget = {
            "write": None if write is None else write * factor,
            "read": None if read is None else read * factor,
        }
        self.write.set_rate(self.budget["write"])
        self.read.set_rate(self.budget["read"])
        self.companies.set_ceiling(company_ceiling(spec.partition_write_units, share) * factor)

    def _say_once(self, key: str, message: str, level: str = "info") -> None:
        if key not in self._said:
            self._said.add(key)
            self.ctx.log(message, level)  # type: ignore[arg-type]

    def announce(self) -> None:
        """The log's line on what the step may take, once at its start."""
        share = self.share()
        for table, kind, what in ((self.target, "write", "writes"), (self.source, "read", "scan")):
            cap = self.capacity.get(table)
            if cap is None:
                continue
            units = self.budget[kind]  # type: ignore[index]
            unit = "WCU" if kind == "write" else "RCU"
            if units is None:
                self._say_once(
                    f"unbounded-{table}",
                    f"{table}: {cap.describe(kind)}; no {unit} budget for the {what} (set "  # type: ignore[arg-type]
                    f"capacity.on_demand_{kind}_units): bounded by rate and in_flight only",
                    "warning",
                )
            else:
                self.ctx.log(
                    f"{table}: {cap.describe(kind)}; the migration's {what} take at most "  # type: ignore[arg-type]
                    f"{units:,.0f} {unit}/s ({share:.0%})"
                )

    # --- the write path ------------------------------------------------------------------

    def _check_share(self) -> None:
        if self.share() != self._applied_share:
            self.apply()
            self.ctx.log(f"capacity share now {self.share():.0%} (the operator's)")

    def request_items(self, most: int, item_units: float) -> int:
        """Items one request may carry: at most a quarter of a second of the table's budget,
        so that a small budget is spent smoothly, not in a few large requests (a company's
        ceiling admits no debt, and needs no such cut)."""
        budget = self.budget["write"]
        if budget is None:
            return most
        return max(1, min(most, int(budget / REQUESTS_PER_BUDGET / item_units)))

    def wait_write(self, stop: threading.Event) -> None:
        """Wait until the write budget is out of debt; a stop unwinds."""
        self._check_share()
        while not self.write.wait(WAIT_SLICE_SECONDS):
            if stop.is_set():
                raise Interrupted()

    def wait_read(self, stop: threading.Event) -> bool:
        """Wait until the read budget is out of debt; False on a stop."""
        while not self.read.wait(WAIT_SLICE_SECONDS):
            if stop.is_set():
                return False
        return True

    def charged_write(self, company: str, units: float, items: int, consumed: float) -> None:
        """A request answered: the table's and the company's buckets corrected by what
        DynamoDB said it consumed (`units` was charged at admission)."""
        if consumed > units:
            self.write.charge(consumed - units)
        elif consumed < units:
            self.write.refund(units - consumed)
        self.companies.settle(company, units, consumed)
        if consumed > 0:  # written (a stop drops a request unsent)
            self.written.add(consumed)
            self.heat.add(company, consumed)
            self.items.add(company, items)

    def charged_read(self, consumed: float) -> None:
        self.read.charge(consumed)
        self.scanned.add(consumed)

    # --- the watcher ---------------------------------------------------------------------

    def start(self) -> None:
        self.refresh()
        self.announce()
        start = self.began - timedelta(minutes=self.spec.baseline_minutes)
        # the minutes before the step's own (minute_sums counts the end's minute whole)
        before = self._sums(start, self.began - timedelta(minutes=1))
        self.baseline = {label: [v for _, v in got] for label, got in before.items()}
        self._watcher = threading.Thread(target=self._watch, name="capacity-watch", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        self._done.set()
        if self._watcher is not None:
            self._watcher.join(5)

    def _sums(self, start: datetime, end: datetime) -> aws_capacity.Minutes:
        try:
            return aws_capacity.minute_sums(self.cw, self.queries, start, end)
        except (ClientError, BotoCoreError) as exc:
            self._say_once("metrics", f"throttle metrics unread ({exc})", "warning")
            return {}

    def _watch(self) -> None:
        while not self._done.wait(self.spec.describe_seconds):
            if self.ctx.clock.stop.is_set():
                return
            if time.monotonic() - self._polled >= self.spec.poll_seconds:
                self.poll()
            else:
                self.refresh()  # capacity only: auto scaling, an operator's UpdateTable
                self._check_share()

    def poll(self, now: datetime | None = None) -> str | None:
        """One look: capacity again, then the throttle sums against the baseline (each minute
        weighed once, however often it is read). Returns why it backed off, or None."""
        now = now or datetime.now(UTC)
        self._polled = time.monotonic()
        self.refresh()
        back = max(self.spec.poll_seconds, 60.0) + METRIC_LAG_SECONDS
        recent = self._sums(max(self.began, now - timedelta(seconds=back)), now)
        rises = []
        for label, minutes in recent.items():
            fresh = [(at, v) for at, v in minutes if (label, at) not in self._acted]
            worst = rise_above(self.baseline.get(label, []), [v for _, v in fresh])
            ceiling = max(self.baseline.get(label, []), default=0.0)
            self._acted.update((label, at) for at, v in fresh if v > ceiling)
            if worst is not None:
                base = max(self.baseline.get(label, []), default=0.0)
                rises.append(f"{label} {worst:,.0f}/min > baseline {base:,.0f}")
        if rises:
            reason = "; ".join(rises)
            factor = self.aimd.back_off(reason)
            self.backoffs += 1
            self.apply()
            self.ctx.throttle.on_throttle()  # the window halves too: an unbounded budget
            self.ctx.log(
                f"{self.target}: the application suffers ({reason}): the migration's budget "
                f"halved to {factor:.0%} of its share",
                "warning",
            )
            return reason
        if self.aimd.factor < 1.0:
            self.aimd.recover()
            self.apply()
        return None

    # --- across a resume -----------------------------------------------------------------

    def carry(self, totals: CapacityTotals) -> None:
        """What the step's earlier runs consumed: the summary counts the whole step."""
        self.written.carry(totals.consumed_wcu)
        self.scanned.carry(totals.consumed_rcu)
        self.backoffs += totals.budget_halvings
        self.heat.carry(totals.peak_wcu)
        self.items.carry(totals.peak_items)

    def totals(self) -> CapacityTotals:
        """For the checkpoint: small whatever the table (the hottest few companies only)."""
        hot = dict(self.heat.hottest(self.spec.hottest_companies))
        items = self.items.peak
        return CapacityTotals(
            consumed_wcu=round(self.written.total, 3),
            consumed_rcu=round(self.scanned.total, 3),
            budget_halvings=self.backoffs,
            peak_wcu={k: round(v, 3) for k, v in hot.items()},
            peak_items={k: round(items.get(k, 0.0), 3) for k in hot},
        )

    # --- what it shows -------------------------------------------------------------------

    def line(self) -> str:
        """The progress line's part: consumed units/s against the budget, and a back-off."""
        parts = [
            f"WCU {self.written.rate():,.0f}/{_budget(self.budget['write'])}",
            f"RCU {self.scanned.rate():,.0f}/{_budget(self.budget['read'])}",
        ]
        if self.aimd.reason:
            parts.append(f"x{self.aimd.factor:.2g} ({self.aimd.reason.split(' ')[0]})")
        return " ".join(parts)

    def summary(self) -> dict[str, Any]:
        hottest = []
        peaks = dict(self.items.hottest(len(self.items.peak)))
        for company, wcu in self.heat.hottest(self.spec.hottest_companies):
            hottest.append(
                {
                    "company": company,
                    "peak_wcu_per_s": round(wcu, 1),
                    "peak_items_per_s": round(peaks.get(company, 0.0), 1),
                }
            )
        out: dict[str, Any] = {
            "capacity_share": self.share(),
            "consumed_wcu": round(self.written.total, 1),
            "consumed_rcu": round(self.scanned.total, 1),
            "budget_halvings": self.backoffs,
            "hottest_companies": hottest,
        }
        for key, kind in (("write_budget_wcu", "write"), ("read_budget_rcu", "read")):
            units = self.budget[kind]  # type: ignore[index]
            if units is not None:  # TOML has no null: an unbounded budget is left out
                out[key] = round(units, 1)
        return out


def _budget(units: float | None) -> str:
    return "-" if units is None else f"{units:,.0f}"
