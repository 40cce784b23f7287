"""migrate_entity (plan phase 2); its inverses, remove_migrated_items and resync_legacy, are in
migrate_rollback.py.

migrate_entity: parallel-scan segments are read in threads (`max_workers` caps them), each with
its own resume cursor, reading its next page while the current one is written; they feed one
pool of writer threads, and the step's WriteThrottle (`in_flight` K requests per segment:
2 transactions or 16 PutItems by default; one shared window of K x segments, AIMD on
throttling, changeable during a run) bounds the conditional writes in flight whatever each
segment holds (docs/performance.md).
Cursors (journal, small):
    {"source_total": n, "segments": {"0": {"key": <LastEvaluatedKey>, "done": bool}, ...},
     "counts": {"scanned", "migrated", "skipped_newer", "written_alone"}}
A segment's key only advances once its page (and every page before it) is applied, and a page's
writes start only once the page before it is applied, so a resume re-runs at most one page per
segment; items the run wrote carry exactly the migration timestamp and are rewritten identically.

How items are settled and written (conditional PutItem, or TransactWriteItems of up to 100 by
the runbook's `write_path`) is in migrate_write.py; per-item detail (quarantine, collisions)
in migrate_ledger.py.
Summary: {entity, source_total, scanned, migrated, skipped_newer, collisions, quarantined,
rejected_by_target (of the quarantined), segments, write_path (as taken), written_alone (of the
migrated: by PutItem after a transaction failed), artifacts}.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.actions.analyze.legacy import (
    KeyIndex,
    entity_spec,
    open_index,
    target_shape,
)
from engine.actions.analyze.mapping import build_resolver
from engine.actions.migrate.budget import CapacityGovernor
from engine.actions.migrate.ledger import Ledger, ledger_name
from engine.actions.migrate.state import (
    MigrateCounts,
    MigrateCursors,
    MigrateSummary,
    SegmentCursor,
)
from engine.actions.migrate.write import MAX_TRANSACT_ITEMS, ItemWriter
from engine.actions.traffic.flags import journaled_flag
from engine.aws import dynamo
from engine.aws.capacity import consumed_units
from engine.aws.target_fit import item_size
from engine.core.capacity import write_units
from engine.core.clock import Interrupted
from engine.core.context import Action, ActionContext, PlannedCall
from engine.runbook.model import EntitySpec, Runbook

TRANSACT_IN_FLIGHT = 2  # transactions per segment: up to 200 items in flight
PUT_IN_FLIGHT = 16  # PutItems per segment
PAGES_AHEAD = 2  # scan pages alive per segment: one being written, the next read ahead
STOP_POLL_SECONDS = 0.1  # waits for a slot or a page wake up this often to honour a stop
BOUNDARY_ITEMS = 25  # items admitted per `clock.check()`: the architecture's write batch
DUAL_WRITE_TRANSACT_ITEMS = 10  # transact_size_dual_write's default: few items held at once


class MigrateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entity: str
    segments: int = Field(default=1, ge=1, le=64)
    max_workers: int | None = Field(default=None, ge=1)  # concurrent segments; None: all
    # write requests in flight per segment scanned at once (K): PutItems, or transactions of
    # up to `transact_size` items; the step shares one window of K x segments, so an uneven
    # split still fills it; the operator may set the window during a run
    # (Engine.write_throttle.set_limit); capped by the HTTP pool
    in_flight: int = Field(default=TRANSACT_IN_FLIGHT, ge=1, le=256)
    # items per scan page (Limit; DynamoDB's 1 MB still caps it): with PAGES_AHEAD pages alive
    # per segment, memory is bounded by this, not by the table, nor by item size
    page_size: int | None = Field(default=1000, ge=1)
    # "transact" (chosen by measurement): TransactWriteItems of up to `transact_size`
    # conditional Puts, 100-fold fewer requests, 2 WCU per item; "put": a conditional PutItem
    # per item, 1 WCU, for hot partitions on provisioned capacity (docs/performance.md)
    write_path: Literal["put", "transact"] = "transact"
    transact_size: int = Field(default=MAX_TRANSACT_ITEMS, ge=1, le=MAX_TRANSACT_ITEMS)
    # while the application dual-writes (the runbook's dual-write flag last set "true"), an
    # application write to an item inside one of these transactions fails for the application
    # (TransactionConflictException): transactions are then at most this many items
    transact_size_dual_write: int = Field(
        default=DUAL_WRITE_TRANSACT_ITEMS, ge=1, le=MAX_TRANSACT_ITEMS
    )
    # this step's share of the tables' capacity; None: the runbook's `capacity.share`
    # (`runbook throttle --capacity-share` overrides both during a run)
    capacity_share: float | None = Field(default=None, gt=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _window_of_the_path(cls, data: Any) -> Any:
        """Unless the runbook sets `in_flight`, the path's own: a PutItem carries one item,
        so it needs more requests in flight than a transaction of 100."""
        if isinstance(data, dict) and "in_flight" not in data and data.get("write_path") == "put":
            return {**data, "in_flight": PUT_IN_FLIGHT}
        return data


@dataclass
class _Page:
    """One scan page of one segment: applied once every item's write is answered."""

    size: int
    last_key: dict[str, Any] | None
    remaining: int
    counts: dict[str, int] = field(
        default_factory=lambda: {"migrated": 0, "skipped_newer": 0, "written_alone": 0}
    )
    applied: threading.Event = field(default_factory=threading.Event)  # its cursor is on disk


@dataclass
class _Segment:
    number: int
    pages: deque[_Page] = field(default_factory=deque)  # scan order; the cursor follows it
    slots: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(PAGES_AHEAD))


class _Pipeline:
    """Scanner threads (one per parallel-scan segment, `max_workers` at once) read pages ahead
    and feed one pool of writer threads; the throttle bounds the conditional writes in flight
    (AIMD), whatever the segments hold. Shared state (cursors, counts, the sqlite ledger and
    index, the journal) is touched only under `lock`; the writes run outside it. A segment's
    cursor moves past a page only when every write of that page, and of the pages before it,
    is applied."""

    def __init__(
        self,
        ctx: ActionContext,
        e: EntitySpec,
        p: MigrateParams,
        resolver: Any,
        index: KeyIndex | None,
        ledger: Ledger,
    ) -> None:
        self.ctx, self.e, self.p = ctx, e, p
        self.cursors = ctx.cursors_as(MigrateCursors)  # shared: changed under self.lock
        self.ledger = ledger
        self.ddb = ctx.client("dynamodb")
        shape = target_shape(self.ddb, e.target)
        if shape is None:
            raise RuntimeError(f"{e.target} does not exist: create it before migrating {e.name}")
        self.lock = threading.Lock()
        self.abort = threading.Event()
        self.errors: list[BaseException] = []
        pool_size = int(getattr(self.ddb.meta.config, "max_pool_connections", 10) or 10)
        self.throttle = ctx.throttle
        self.writer = ItemWriter(
            ctx,
            e,
            resolver,
            index,
            ledger,
            shape,
            self.lock,
            self.throttle.on_throttle,
            self._on_conflict,
        )
        self.transact_size = p.transact_size
        dual = journaled_flag(ctx, ctx.runbook.flags.dual_write)
        if p.write_path == "transact" and str(dual).lower() == "true":
            self.transact_size = min(p.transact_size, p.transact_size_dual_write)
        self.throttle.configure(p.in_flight * self.concurrent_segments(), ceiling=pool_size)
        self.pool_size = pool_size
        self.governor = CapacityGovernor(ctx, e.source, e.target, p.capacity_share)
        self.companies_seen: set[str] = set()

    def _on_conflict(self, items: int) -> None:
        with self.lock:
            self.cursors.counts.conflicts += items

    def concurrent_segments(self) -> int:
        todo = sum(not s.done for s in self.cursors.segments.values())
        return max(1, min(todo or 1, self.p.max_workers or self.p.segments))

    # --- throttling signals --------------------------------------------------------------

    def _on_retry(self, response: Any = None, **_: Any) -> None:
        """botocore's retry hook: every throttled attempt halves the window (AIMD)."""
        if response is not None:
            code = response[1].get("Error", {}).get("Code") if response[1] else None
            if code in dynamo.THROTTLE_CODES:
                self.throttle.on_throttle()

    def run_all(self) -> None:
        segments = self.cursors.segments
        todo = [s for s in range(self.p.segments) if not segments[str(s)].done]
        if not todo:
            return
        events = ("needs-retry.dynamodb.PutItem", "needs-retry.dynamodb.TransactWriteItems")
        hook = f"migrate-throttle-{id(self)}"
        for event in events:
            self.ddb.meta.events.register_first(event, self._on_retry, unique_id=hook + event)
        if self.p.write_path == "transact":
            dual = (
                f" (dual-write is on: transact_size_dual_write, not {self.p.transact_size})"
                if self.transact_size < self.p.transact_size
                else ""
            )
            self.ctx.log(
                f"{self.e.target}: TransactWriteItems of up to {self.transact_size} "
                f"conditional Puts (2 WCU per item){dual}"
            )
        scanners = min(len(todo), self.p.max_workers or len(todo))
        self.governor.carry(self.cursors.capacity)  # a resume: the step's totals go on
        self.governor.start()
        writers = ThreadPoolExecutor(self.pool_size, thread_name_prefix=f"write-{self.e.name}")
        try:
            with ThreadPoolExecutor(scanners, thread_name_prefix=f"migrate-{self.e.name}") as pool:
                futures = [pool.submit(self.run_segment, _Segment(s), writers) for s in todo]
                try:
                    for future in as_completed(futures):
                        future.result()
                except BaseException:
                    self.abort.set()  # scanners stop submitting; writes in flight finish
                    if not self.errors:
                        raise
        finally:
            # all writes are answered before the step ends; a stop drops the queued ones
            writers.shutdown(wait=True, cancel_futures=self.abort.is_set())
            self.governor.stop()
            for event in events:
                self.ddb.meta.events.unregister(event, unique_id=hook + event)
        if self.errors:  # a writer's failure, not the stop it caused the scanners
            raise self.errors[0]

    def _pages(self, seg: _Segment) -> Iterator[tuple[list[dict[str, Any]], Any]]:
        """The segment's pages, the next one read while this one is written (at most
        PAGES_AHEAD pages alive per segment: memory stays bounded by pages)."""
        with self.lock:
            start = self.cursors.segments[str(seg.number)].key
        scan = dynamo.scan_pages(
            self.ddb,
            self.e.source,
            start_key=start,
            segment=seg.number,
            total_segments=self.p.segments,
            page_size=self.p.page_size,
            clock=self.ctx.clock,
            on_response=self._scanned,
            ReturnConsumedCapacity="TOTAL",
        )
        ahead: queue.Queue[Any] = queue.Queue()

        def read() -> None:
            try:
                while True:
                    while not seg.slots.acquire(timeout=STOP_POLL_SECONDS):
                        if self.abort.is_set() or self.ctx.clock.stop.is_set():
                            return
                    # the scan's read budget: the next page once the last one is paid for
                    if not self.governor.wait_read(self.ctx.clock.stop) or self.abort.is_set():
                        return
                    page = next(scan, None)  # fetched only once a slot is free
                    ahead.put(page)
                    if page is None or self.abort.is_set():
                        return
            except BaseException as exc:  # handed to the scanner thread
                ahead.put(exc)

        reader = threading.Thread(target=read, name=f"scan-{self.e.name}-{seg.number}")
        reader.daemon = True  # a stop leaves it blocked at most STOP_POLL_SECONDS
        reader.start()
        while True:
            try:
                got = ahead.get(timeout=STOP_POLL_SECONDS)
            except queue.Empty:
                self._check()
                continue
            if got is None:
                return
            if isinstance(got, BaseException):
                raise got
            yield got

    def _scanned(self, response: dict[str, Any]) -> None:
        """A scan page's read units (ConsumedCapacity; estimated where an emulator says
        nothing: an eventually consistent read costs half a unit per 4 KB)."""
        got = consumed_units(response, self.e.source)
        if got is None:
            size = sum(item_size(dynamo.to_python(i)) for i in response.get("Items", []))
            got = max(0.5, size / 4096 / 2)
        self.governor.charged_read(got)

    def _check(self) -> None:
        """A stop or another thread's failure unwinds; no batch boundary (see run_segment)."""
        if self.ctx.clock.stop.is_set() or self.abort.is_set():
            raise Interrupted()

    def run_segment(self, seg: _Segment, writers: ThreadPoolExecutor) -> None:
        previous: _Page | None = None
        for items, last_key in self._pages(seg):
            # the next page is read ahead, but its writes wait until this one is applied (its
            # cursor on disk): a kill then re-writes at most one page per segment; the window
            # stays full with the other segments' writes
            while previous is not None and not previous.applied.wait(STOP_POLL_SECONDS):
                self._check()
            page = previous = _Page(len(items), last_key, max(1, len(items)))
            with self.lock:
                seg.pages.append(page)
            if not items:  # a filtered or empty last page still moves the cursor
                self._items_done(seg, page, [], 0)
                continue
            self._send_page(seg, page, items, writers)

    def _send_page(
        self, seg: _Segment, page: _Page, items: list[dict[str, Any]], writers: ThreadPoolExecutor
    ) -> None:
        """The page's requests, company by company in turn: a company whose partition budget
        is spent, or that holds its share of the window, waits while the others go."""
        queues: dict[str, deque[list[dict[str, Any]]]] = {}
        for company, chunk in self._chunks(items):
            queues.setdefault(company, deque()).append(chunk)
        with self.lock:
            self.companies_seen.update(queues)
        admitted = 0
        gate = self.governor.companies
        while queues:
            sent = False
            for company in list(queues):
                chunk = queues[company][0]
                units = self._units(chunk)
                if not gate.try_admit(company, units, self._company_most()):
                    continue
                try:
                    for n in range(admitted, admitted + len(chunk)):
                        if n % BOUNDARY_ITEMS == 0:
                            # a batch boundary: a detached engine's pause and pace act here
                            # (its boundary hook counts one batch of 25 per call)
                            self.ctx.clock.check(BOUNDARY_ITEMS)
                    self.governor.wait_write(self.ctx.clock.stop)
                    while not self.throttle.acquire(timeout=STOP_POLL_SECONDS):
                        self._check()
                    self._check_releasing()
                except BaseException:
                    gate.settle(company, units, 0.0)  # never sent: its units come back
                    raise
                admitted += len(chunk)
                self.governor.write.charge(units)
                writers.submit(self._write_chunk, seg, page, chunk, company, units)
                queues[company].popleft()
                if not queues[company]:
                    del queues[company]
                sent = True
            if not sent:  # every company waits for its partition's units or its slots
                wait = min(max(gate.delay(), 0.01), STOP_POLL_SECONDS)
                if self.ctx.clock.stop.wait(wait):
                    raise Interrupted()
                self._check()

    def _company_most(self) -> int:
        """Requests one company may keep in flight: half the window once the step has seen
        more than one company (the whole window while it writes only one)."""
        window = self.throttle.state().window
        with self.lock:
            many = len(self.companies_seen) > 1
        return max(1, window // 2) if many else window

    def _units(self, chunk: list[dict[str, Any]]) -> float:
        """The write units a request of these items is expected to cost (its path's price)."""
        path = self.write_path()
        return sum(write_units(item_size(item), path) for item in chunk)

    def _chunks(self, items: list[dict[str, Any]]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """One request's items, of one company (one partition key of the target): one for
        PutItem, up to `transact_size` for a transaction."""
        size = 1
        if self.p.write_path == "transact" and self.writer.transactions.is_set():
            size = self.governor.request_items(self.transact_size, write_units(1, "transact"))
        by_company: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            by_company.setdefault(self._company(item), []).append(item)
        for company, group in by_company.items():
            for start in range(0, len(group), size):
                yield company, group[start : start + size]

    def _company(self, item: dict[str, Any]) -> str:
        user = item.get(self.e.user_attr)
        company = self.writer.resolver.company_for(user) if isinstance(user, str) else None
        return str(company or "")

    def _check_releasing(self) -> None:
        try:
            self._check()
        except BaseException:
            self.throttle.release()
            raise

    def write_path(self) -> str:
        """The path the writes took: "transact" falls back to "put" where the target has none."""
        return self.p.write_path if self.writer.transactions.is_set() else "put"

    def _write_chunk(
        self, seg: _Segment, page: _Page, chunk: list[dict[str, Any]], company: str, units: float
    ) -> None:
        """One request in flight: a conditional PutItem, or a transaction of the chunk."""
        try:
            if self.abort.is_set() or self.ctx.clock.stop.is_set():
                return  # the page stays unapplied: its cursor does not move
            if len(chunk) == 1 and self.p.write_path == "put":
                outcomes, alone = [self.writer.write(chunk[0])], 0
            else:
                outcomes, alone = self.writer.write_chunk(chunk, self.transact_size)
            self.throttle.on_success()
        except Interrupted:
            return
        except BaseException as exc:
            if isinstance(exc, ClientError) and dynamo.is_throttle(exc):
                self.throttle.on_throttle()
            with self.lock:
                self.errors.append(exc)
            self.abort.set()
            return
        finally:
            self.throttle.release()
            self.governor.charged_write(company, units, len(chunk), self.writer.spent())
        self._items_done(seg, page, outcomes, alone)

    def _items_done(self, seg: _Segment, page: _Page, outcomes: list[str], alone: int) -> None:
        c = self.cursors
        with self.lock:
            page.counts["written_alone"] += alone
            for outcome in outcomes:
                if outcome in page.counts:
                    page.counts[outcome] += 1
            page.remaining -= max(1, len(outcomes))  # an empty page counts as one
            if page.remaining > 0:
                return
            applied: list[_Page] = []
            while seg.pages and seg.pages[0].remaining <= 0:
                done = seg.pages.popleft()
                applied.append(done)
                seg.slots.release()
                counts = c.counts
                counts.scanned += done.size
                counts.migrated += done.counts["migrated"]
                counts.skipped_newer += done.counts["skipped_newer"]
                counts.written_alone += done.counts["written_alone"]
                state = c.segments[str(seg.number)]
                if done.last_key:
                    state.key = done.last_key
                else:
                    state.key, state.done = None, True
            if not applied:
                return
            self.ledger.db.commit()  # the ledger first, then the cursor that relies on it
            c.capacity = self.governor.totals()
            t = self.throttle.state()
            self.ctx.progress(
                self.e.source,
                c.counts.scanned,
                c.source_total,
                in_flight=(t.in_flight, t.window),
                capacity=self.governor.line(),
            )
            # a page applied is on disk at once: a kill re-sends at most one page per segment
            self.ctx.checkpoint(force=True)
            for done in applied:
                done.applied.set()  # its segment's next page may now be written


def run_migrate(ctx: ActionContext, p: MigrateParams) -> dict[str, Any]:
    e = entity_spec(ctx.runbook, p.entity)
    ddb = ctx.client("dynamodb")
    c = ctx.cursors_as(MigrateCursors)
    fresh = not c.segments or c.total_segments != p.segments
    if fresh:
        c.total_segments = p.segments
        c.segments = {str(s): SegmentCursor() for s in range(p.segments)}
        c.counts = MigrateCounts()
        c.source_total = dynamo.count_items(ddb, e.source, clock=ctx.clock)
        ctx.checkpoint(force=True)
    total = c.source_total
    counts = c.counts
    resolver = build_resolver(ctx)
    index = open_index(ctx)
    if index is None:
        ctx.log(
            "no analysis index: legacy-vs-legacy collisions are only caught by the createdBy "
            "condition (first writer wins)",
            "warning",
        )
    ledger = Ledger(ctx.artifact(ledger_name(e.name)), fresh)
    ctx.progress(e.source, counts.scanned, total)
    try:
        pipeline = _Pipeline(ctx, e, p, resolver, index, ledger)
        pipeline.run_all()
        artifacts = ledger.export(ctx, e.name)
        quarantined = ledger.count("quarantine")
        rejected = ledger.count_rejected_by_target()
        collisions = ledger.count("collisions")
    except Interrupted:
        ctx.checkpoint(force=True)
        raise
    finally:
        ledger.close()
        if index is not None:
            index.close()
    held = dynamo.count_items(ddb, e.source, clock=ctx.clock) if counts.scanned < total else None
    short = dynamo.check_scan_arithmetic(e.name, total, counts.scanned, lambda: held or 0)
    if short:
        c.segments = {}  # the next run is a fresh pass: conditional writes keep it idempotent
        ctx.checkpoint(force=True)
        raise dynamo.ShortScan(f"{short}. Nothing was marked done; `runbook run` scans again")
    ctx.checkpoint(force=True)
    if collisions:
        ctx.log(f"{collisions} {e.name} collisions not written: see {artifacts[1]}", "warning")
    if quarantined:
        ctx.log(f"{quarantined} {e.name} items quarantined: see {artifacts[0]}", "warning")
    return {
        "entity": e.name,
        "source_total": total,
        "scanned": counts.scanned,
        "migrated": counts.migrated,
        "skipped_newer": counts.skipped_newer,
        "collisions": collisions,
        "quarantined": quarantined,
        "rejected_by_target": rejected,  # of the quarantined: the target table cannot hold them
        "segments": p.segments,
        "write_path": pipeline.write_path(),
        "written_alone": counts.written_alone,  # of the migrated: sent by PutItem after a cancel
        "transact_size": pipeline.transact_size,  # as taken (smaller while dual-write is on)
        "conflicts": counts.conflicts,  # writes that met an application write in flight
        "artifacts": artifacts,
        # the budget, what was consumed (ConsumedCapacity), halvings, the hottest companies
        **pipeline.governor.summary(),
        # the table shrank while it was scanned (the application deleted items): why `scanned`
        # may fall short of `source_total`
        **({"shrank_meanwhile": total - held} if held is not None else {}),
    }


def unsound_migration(summary: dict[str, Any]) -> str | None:
    """A migration marked done although it read fewer items than it counted, with no
    shrinking table to explain it (versions before the scan arithmetic was checked)."""
    counted, scanned = summary.get("source_total"), summary.get("scanned")
    if not isinstance(counted, int) or not isinstance(scanned, int) or scanned >= counted:
        return None
    if "shrank_meanwhile" in summary:
        return None
    return f"it scanned {scanned:,} of the {counted:,} items it counted, unexplained"


def plan_migrate(rb: Runbook, p: MigrateParams) -> list[PlannedCall]:
    e = rb.find_entity(p.entity)
    if e is None:
        return []
    share = p.capacity_share if p.capacity_share is not None else rb.capacity.share
    return [
        PlannedCall(
            "dynamodb",
            "DescribeTable",
            f"{e.source}, {e.target}",
            f"capacity, every {rb.capacity.describe_seconds:g} s: a budget of {share:.0%}",
        ),
        PlannedCall(
            "application-autoscaling",
            "DescribeScalableTargets",
            f"table/{e.source}, table/{e.target}",
            "auto scaling bounds",
        ),
        PlannedCall(
            "cloudwatch",
            "GetMetricData",
            e.target,
            f"WriteThrottleEvents, ThrottledRequests, dual-write failures, every "
            f"{rb.capacity.poll_seconds:g} s",
        ),
        PlannedCall(
            "dynamodb",
            "Scan",
            e.source,
            f"Select=COUNT, then {p.segments} segment(s), ReturnConsumedCapacity",
        ),
        PlannedCall(
            "dynamodb",
            "TransactWriteItems" if p.write_path == "transact" else "PutItem",
            e.target,
            "conditional: absent, or written by this run / older and same creator"
            + (
                f"; {p.transact_size} per transaction, 2 WCU per item, PutItem after a cancel"
                if p.write_path == "transact"
                else ""
            ),
        ),
    ]


ACTIONS = (
    Action(
        "migrate_entity",
        MigrateParams,
        run_migrate,
        plan_migrate,
        "Copy one legacy entity table into its company-scoped twin, resumable per segment",
        cursors=MigrateCursors,
        summary=MigrateSummary,
        unsound=unsound_migration,
    ),
)
