"""How migrate_entity writes legacy items to the company-scoped table, one at a time or as a
transaction.

Each item is first settled where it can be without a write: set aside by an earlier attempt,
malformed (quarantined with the reason), a collision the analysis found, or unfit for the
target table as DescribeTable reports it (target_fit). The rest are `Prepared`, then written
conditionally by the runbook's `write_path`:

* "put": one conditional PutItem per item (1 request and 1 WCU per item).
* "transact": one TransactWriteItems of up to `transact_size` (<= 100) conditional Puts, at
  most 4 MB and no target key twice (1 request per chunk, 2 WCU per item). A cancelled
  transaction settles the items whose condition failed from the item it returns and retries
  the others once as a new transaction; what is left falls back to PutItem, item by item. A
  target without transactions (dynalite: UnknownOperationException) switches the step to "put".

The condition, both ways:
    attribute_not_exists(pk) OR (updatedAt <= :ts AND createdBy = :user)
A TransactionConflict (the application writes an item inside a request in flight) waits a
jittered backoff and is tried again, on both paths, and is counted (`conflicts`).

A failed condition is an application write after the run began (same creator, later updatedAt:
kept, `skipped_newer`) or a key owned by another user (a collision, written by neither side).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from engine.actions.analyze.legacy import (
    KeyIndex,
    company_or_fail,
    key_text,
    source_keys,
    target_keys,
)
from engine.actions.migrate.ledger import TARGET_REJECTED, Ledger
from engine.aws import dynamo
from engine.aws.capacity import consumed_units
from engine.aws.target_fit import TargetShape, item_size, why_unfit
from engine.core.capacity import write_units
from engine.core.clock import Interrupted
from engine.core.context import ActionContext
from engine.runbook.model import EntitySpec
from engine.runbook.transforms import (
    CREATED_BY,
    UPDATED_AT,
    classify_legacy,
    is_newer,
    to_company_scoped,
)

WRITE_CONDITION = "attribute_not_exists(#pk) OR (#upd <= :ts AND #cb = :user)"
MAX_TRANSACT_ITEMS = 100  # TransactWriteItems' limit
MAX_TRANSACT_BYTES = 4 * 1024 * 1024  # aggregate size of a transaction's items (AWS limit)
TRANSACT_ROUNDS = 2  # cancelled (not throttled) transactions per chunk before the per-item path
PUT_ATTEMPTS = 3  # a failed condition whose item vanished before the read-back is retried
# cancellation reasons worth another transaction: the item itself was fine
RETRY_REASONS = frozenset(
    {"None", "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)
THROTTLE_REASONS = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded"})
# An item inside another request in flight (the application's write, or its transaction):
# PutItem fails with TransactionConflictException (neither botocore nor THROTTLE_CODES retries
# it), a transaction is cancelled with the reason TransactionConflict. Both wait a jittered
# backoff and try again; a transaction after CONFLICT_ROUNDS such rounds goes item by item,
# a PutItem after CONFLICT_ATTEMPTS fails the step (RetriesExhausted).
CONFLICT_CODE = "TransactionConflictException"
CONFLICT_REASON = "TransactionConflict"
CONFLICT_ROUNDS = 4
CONFLICT_ATTEMPTS = 10
CONFLICT_BASE_SECONDS = 0.1
# a transaction AWS answers in well under a second; on an emulator this slow, each costs more
# than the table (a stock moto server deep-copies every touched table once per item)
SLOW_TRANSACTION_SECONDS = 5.0
EMULATOR_ADVICE = (
    "an emulator such as a stock moto server copies every touched table once per item of a "
    "transaction, and can fail one under concurrent writes; this step now writes item by item "
    "(conditional PutItem). Rehearse on the embedded world (no flags), or set "
    'write_path = "put" on step {step} in the runbook to start that way'
)


@dataclass(frozen=True)
class Prepared:
    """A legacy item ready to write: its source key, owner and company-scoped twin."""

    skey: str
    source: dict[str, Any]
    user: str
    company: str
    ident: str
    new: dict[str, Any]
    key: tuple[str, str]  # the target key, as text: one transaction never holds it twice
    size: int


class ItemWriter:
    """Settles and writes items of one entity; thread-safe (`lock` guards the sqlite files)."""

    def __init__(
        self,
        ctx: ActionContext,
        e: EntitySpec,
        resolver: Any,
        index: KeyIndex | None,
        ledger: Ledger,
        shape: TargetShape,
        lock: threading.Lock,
        on_throttle: Callable[[], None],
        on_conflict: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.ctx, self.e, self.resolver, self.index = ctx, e, resolver, index
        self.ledger, self.shape, self.lock, self.on_throttle = ledger, shape, lock, on_throttle
        self.on_conflict = on_conflict  # items that met a TransactionConflict (counted)
        self.skeys = source_keys(ctx.runbook, e)
        self.pk, self.sk = target_keys(ctx.runbook, e)
        self.ddb = ctx.client("dynamodb")
        self.transactions = threading.Event()  # set while the target takes transactions
        self.transactions.set()
        # an emulator endpoint (neither AWS nor the embedded world): transactions may be too
        # slow or fail there, and the step then writes item by item
        self.emulator = ctx.journal.run.target.kind == "endpoint"
        # write units this thread's requests consumed (ConsumedCapacity; an estimate where an
        # answer carries none: a failed condition, or an emulator that does not say)
        self._spent = threading.local()

    def spent(self) -> float:
        """Write units consumed by this thread's requests since it last asked."""
        units = float(getattr(self._spent, "units", 0.0))
        self._spent.units = 0.0
        return units

    def _spend(self, units: float) -> None:
        self._spent.units = float(getattr(self._spent, "units", 0.0)) + units

    def _spend_answer(self, response: Any, estimate: float) -> None:
        got = consumed_units(response, self.e.target)
        self._spend(estimate if got is None else got)

    # --- settling ------------------------------------------------------------------------

    def prepare(self, item: dict[str, Any]) -> Prepared | str:
        """The item ready to write, or its outcome when no write is needed."""
        skey = key_text(item, self.skeys)
        with self.lock:
            if self.ledger.is_quarantined(skey):  # set aside by an earlier attempt: never resent
                return "quarantined"
        reason = classify_legacy(self.e, item)
        if reason is not None:
            return self._quarantine(skey, reason, item)
        user = item[self.e.user_attr]
        company = company_or_fail(self.resolver, user, self.ctx)
        ident = item[self.e.id_attr]
        with self.lock:
            index = self.index
            if index is not None and index.is_collision(self.e.name, company, ident):
                why, existing = index.collision_reason(self.e.name, company, ident)
                self.ledger.collision(skey, company, ident, user, why, existing, item)
                return "collision"
        new = to_company_scoped(self.e, item, company, self.ctx.migration_ts)
        size = item_size(new)
        unfit = why_unfit(self.shape, new, size)
        if unfit is not None:
            return self._quarantine(skey, unfit, item)
        key = (str(new[self.pk]), str(new[self.sk]))
        return Prepared(skey, item, user, company, ident, new, key, size)

    def _quarantine(self, skey: str, reason: str, item: dict[str, Any], now: bool = False) -> str:
        with self.lock:
            self.ledger.quarantine(skey, reason, item)
            if now:  # a resume must not send this item again
                self.ledger.db.commit()
        return "quarantined"

    def settle_failed(self, prep: Prepared, old: dict[str, Any] | None) -> str | None:
        """The outcome of a failed condition, given the item in the way; None if it is gone."""
        if old is None:
            return None
        if old.get(CREATED_BY) != prep.user:
            why, existing = "target-owned-by-other", str(old.get(CREATED_BY, ""))
        elif is_newer(old.get(UPDATED_AT), self.ctx.migration_ts):
            return "skipped_newer"
        else:
            why, existing = "target updatedAt unreadable", prep.user
        with self.lock:
            self.ledger.collision(
                prep.skey, prep.company, prep.ident, prep.user, why, existing, prep.source
            )
        return "collision"

    def _rejected(self, prep: Prepared, exc: ClientError) -> str:
        message = exc.response.get("Error", {}).get("Message", "")
        return self._quarantine(prep.skey, TARGET_REJECTED + message, prep.source, now=True)

    # --- the "put" path --------------------------------------------------------------------

    def write(self, item: dict[str, Any]) -> str:
        """Migrate one legacy item with a conditional PutItem; returns its outcome."""
        got = self.prepare(item)
        return got if isinstance(got, str) else self.put(got)

    def _names_values(self, prep: Prepared) -> tuple[dict[str, str], dict[str, Any]]:
        names = {"#pk": self.pk, "#upd": UPDATED_AT, "#cb": CREATED_BY}
        return names, {":ts": self.ctx.migration_ts, ":user": prep.user}

    def _conflict_wait(self, rounds: int) -> None:
        """A jittered backoff before another try after a TransactionConflict."""
        cap = CONFLICT_BASE_SECONDS * 2 ** min(rounds, 6)
        self.ctx.clock.sleep_real(random.uniform(cap / 2, cap))

    def put(self, prep: Prepared) -> str:
        names, values = self._names_values(prep)
        attempts = conflicts = 0
        while attempts < PUT_ATTEMPTS:
            try:
                written, old = dynamo.conditional_put(
                    self.ddb,
                    self.e.target,
                    prep.new,
                    WRITE_CONDITION,
                    values=values,
                    names=names,
                    clock=self.ctx.clock,
                    key={self.pk: prep.new[self.pk], self.sk: prep.new[self.sk]},
                    on_response=lambda r: self._spend_answer(r, write_units(prep.size, "put")),
                )
            except ClientError as exc:
                code = dynamo.error_code(exc)
                if code == CONFLICT_CODE:
                    conflicts += 1
                    self.on_conflict(1)
                    if conflicts >= CONFLICT_ATTEMPTS:
                        raise dynamo.RetriesExhausted(
                            f"{self.e.target}: {prep.skey} met {conflicts} transaction "
                            "conflicts in a row (an application write keeps the item busy)"
                        ) from exc
                    self._conflict_wait(conflicts)
                    continue
                if code != "ValidationException":
                    raise
                return self._rejected(prep, exc)
            attempts += 1
            if written:
                return "migrated"
            self._spend(write_units(prep.size, "put"))  # a failed condition costs its units
            outcome = self.settle_failed(prep, old)
            if outcome is not None:
                return outcome
        raise RuntimeError(
            f"{self.e.target}: conditional put of {prep.skey} kept failing without an item"
        )

    # --- the "transact" path ---------------------------------------------------------------

    def write_chunk(self, items: list[dict[str, Any]], transact_size: int) -> tuple[list[str], int]:
        """Migrate items as transactions of up to `transact_size`: the outcomes in item order,
        and how many items had to be written alone (PutItem) after a transaction failed."""
        outcomes: list[str] = [""] * len(items)
        prepared: list[tuple[int, Prepared]] = []
        for n, item in enumerate(items):
            got = self.prepare(item)
            if isinstance(got, str):
                outcomes[n] = got
            else:
                prepared.append((n, got))
        written_alone = 0
        for group in split_transactions(prepared, transact_size):
            results, alone = self._transact(group)
            written_alone += alone
            for n, outcome in results:
                outcomes[n] = outcome
        return outcomes, written_alone

    def _put_entry(self, prep: Prepared) -> dict[str, Any]:
        names, values = self._names_values(prep)
        return {
            "Put": {
                "TableName": self.e.target,
                "Item": dynamo.to_dynamo(prep.new),
                "ConditionExpression": WRITE_CONDITION,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {k: dynamo.av(v) for k, v in values.items()},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _transact(self, group: list[tuple[int, Prepared]]) -> tuple[list[tuple[int, str]], int]:
        """One chunk as transactions: retried while only throttled (with backoff) or cancelled
        by items that were fine (at most TRANSACT_ROUNDS); the rest is written alone. Returns
        the outcomes and how many were written alone."""
        settled: list[tuple[int, str]] = []
        alone: list[tuple[int, Prepared]] = []
        pending, cancelled, throttled, conflicted = group, 0, 0, 0
        while pending and self.transactions.is_set():
            try:
                started = time.monotonic()
                answer = dynamo.call_with_retry(
                    self.ctx.clock,
                    self.ddb.transact_write_items,
                    TransactItems=[self._put_entry(p) for _, p in pending],
                    ReturnConsumedCapacity="TOTAL",
                )
                self._spend_answer(answer, _transact_units(pending))
                seconds = time.monotonic() - started
                if self.emulator and seconds >= SLOW_TRANSACTION_SECONDS:
                    self._stop_transactions(
                        f"a transaction of {len(pending)} items took {seconds:.0f} s"
                    )
                done = [(n, "migrated") for n, _ in pending]
                return settled + done + self._puts(alone), len(alone)
            except ClientError as exc:
                code = dynamo.error_code(exc)
                if code == "UnknownOperationException":
                    self._stop_transactions("the target has no TransactWriteItems", advice=False)
                    break
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                if self.emulator and status >= 500:
                    self._stop_transactions(f"TransactWriteItems failed with HTTP {status}")
                    break
                if code == "ValidationException":
                    break  # the request as a whole: written alone, each item tells which
                if code != "TransactionCanceledException":
                    raise
                reasons = exc.response.get("CancellationReasons") or []
                if len(reasons) != len(pending):
                    break
            codes = [str(r.get("Code")) for r in reasons]
            if not any(code in THROTTLE_REASONS for code in codes):
                self._spend(_transact_units(pending))  # a cancelled transaction is paid for
            pending = self._settle_cancelled(pending, reasons, settled, alone)
            if any(code in THROTTLE_REASONS for code in codes):
                throttled += 1
                if throttled >= dynamo.MAX_ATTEMPTS:
                    raise dynamo.RetriesExhausted(f"{self.e.target}: transactions kept throttled")
                self.on_throttle()
                self.ctx.clock.sleep_real(dynamo.backoff_seconds(throttled))
            elif CONFLICT_REASON in codes:
                self.on_conflict(codes.count(CONFLICT_REASON))
                conflicted += 1
                if conflicted >= CONFLICT_ROUNDS:
                    break  # item by item: each PutItem retries its own conflicts
                self._conflict_wait(conflicted)
            else:
                cancelled += 1
                if cancelled >= TRANSACT_ROUNDS:
                    break
        return settled + self._puts(pending + alone), len(pending) + len(alone)

    def _settle_cancelled(
        self,
        pending: list[tuple[int, Prepared]],
        reasons: list[dict[str, Any]],
        settled: list[tuple[int, str]],
        alone: list[tuple[int, Prepared]],
    ) -> list[tuple[int, Prepared]]:
        """A cancelled transaction's items: failed conditions settled from the item returned,
        the ones that were fine (or only throttled) returned for the next transaction, the rest
        added to `alone`."""
        retry: list[tuple[int, Prepared]] = []
        for (n, prep), reason in zip(pending, reasons, strict=True):
            code = str(reason.get("Code") or "None")
            old = reason.get("Item")
            if code == "ConditionalCheckFailed" and old:
                outcome = self.settle_failed(prep, dynamo.to_python(old))
                if outcome is not None:
                    settled.append((n, outcome))
                    continue
            (retry if code in RETRY_REASONS else alone).append((n, prep))
        return retry

    def _puts(self, items: list[tuple[int, Prepared]]) -> list[tuple[int, str]]:
        """Items alone, one after another: a stop is honoured between them (up to 100 round
        trips), and the chunk's page stays unapplied."""
        out = []
        for n, prep in items:
            if self.ctx.clock.stop.is_set():
                raise Interrupted()
            out.append((n, self.put(prep)))
        return out

    def _stop_transactions(self, why: str, advice: bool = True) -> None:
        """The rest of the step writes item by item; said once, with what to do."""
        if self.transactions.is_set():
            self.transactions.clear()
            said = (
                EMULATOR_ADVICE.format(step=self.ctx.step_id)
                if advice
                else ("writing item by item (conditional PutItem)")
            )
            self.ctx.log(f"{self.e.target}: {why} on this endpoint; {said}", "warning")


def _transact_units(pending: list[tuple[int, Prepared]]) -> float:
    return sum(write_units(p.size, "transact") for _, p in pending)


def split_transactions(
    prepared: list[tuple[int, Prepared]], size: int
) -> Iterator[list[tuple[int, Prepared]]]:
    """Transactions of at most `size` items and 4 MB, no target key twice in one (a pure
    transform: the order is kept)."""
    group: list[tuple[int, Prepared]] = []
    keys: set[tuple[str, str]] = set()
    total = 0
    for n, prep in prepared:
        full = len(group) >= size or total + prep.size > MAX_TRANSACT_BYTES
        if group and (full or prep.key in keys):
            yield group
            group, keys, total = [], set(), 0
        group.append((n, prep))
        keys.add(prep.key)
        total += prep.size
    if group:
        yield group
