"""`runbook plan`'s choice between the backends of migrate_entity, with numbers (pure; issue 23).

From the runbook's counted items (the inventory the first step verifies) and the step's params:

* local: one process at the measured rate (`python -m bench`, the latency model: about 1,800
  items/s, docs/performance.md).
* step-functions: the export (PITR, no read capacity), then `max_concurrency` child executions
  of `batch_size` items; time from a per-item model of the child (its three round trips),
  capped by the target table's write quota (the runbook's capacity share of it); cost
  from the state transitions the generated state machine takes per item (STANDARD children) or
  the children's requests and duration (EXPRESS), plus the export, the mapping reads and the
  parent's transitions. DynamoDB writes cost the same on both paths (2 write units per item:
  a transaction's Put, or a PutItem and the UpdateItem that drops the user attribute) and are
  left out. The bridge function (a Lambda) reads each data file once: its duration is billed,
  and it overlaps the copy of the files before it, so it adds no time but the first file's.

Prices are AWS's us-east-1 list prices, written here: change them with the region.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from engine.actions.migrate.sfn_items import happy_path
from engine.actions.migrate.sfn_spec import CopySpec

LOCAL_ITEMS_PER_SECOND = 1_800.0  # one process, the latency model (docs/performance.md)
# Step Functions (us-east-1)
STANDARD_PER_TRANSITION = 0.025 / 1000
EXPRESS_PER_REQUEST = 1.00 / 1_000_000
EXPRESS_PER_GB_SECOND = 0.00001667
EXPRESS_BILLED_GB = 64 / 1024  # 64 MB, the billing minimum (a child holds one batch)
# DynamoDB export to S3 (PITR, full export) and S3 requests
EXPORT_PER_GB = 0.10
S3_GET = 0.0004 / 1000
EXPORT_FIXED_SECONDS = 15 * 60.0  # an export takes minutes whatever its size (assumed)
EXPORT_BYTES_PER_SECOND = 50e6  # and about this much more per byte (assumed)
# a child execution: start, then per item the mapping read, the put and the update (~15 ms
# each inside a region) and the states between them; the inline Map runs up to 40 at once
CHILD_START_SECONDS = 0.1
ITEM_SECONDS = 0.06
INLINE_PARALLEL = 40
PARENT_TRANSITIONS = 4  # the parent's own: start, Map, its end
FILE_TRANSITIONS = 4  # a data file's child: start, Convert, the inner Map, its end
# the bridge function: 1,769 MB, one vCPU (engine/aws/bridge_function.py); it converts about
# 19 MB of JSON lines a second on one core of the development machine (bench/bridge.py), taken
# as Lambda's vCPU (not measured on Lambda)
LAMBDA_PER_GB_SECOND = 0.0000166667
BRIDGE_GB = 1769 / 1024
BRIDGE_BYTES_PER_SECOND = 19e6
# the target table bounds both paths: an on-demand table's default quota is 40,000 write
# request units a second; the migration takes the runbook's `capacity.share` of it, and each
# item costs 2 (a transaction's Put, or a PutItem and the UpdateItem)
TABLE_WRITE_UNITS = 40_000.0
WRITES_PER_ITEM = 2


@dataclass(frozen=True)
class Estimate:
    items: int
    local_seconds: float
    sfn_seconds: float
    sfn_rate: float
    children: int
    transitions: int  # every state transition, the children's included
    sfn_cost: float  # the children and the parent (transitions, or requests and duration)
    export_cost: float
    reads_cost: float  # the mapping objects read per item
    bridge_cost: float  # the bridge function's duration (a real account)
    child_type: str

    @property
    def total_cost(self) -> float:
        return self.sfn_cost + self.export_cost + self.reads_cost + self.bridge_cost


def estimate(spec: CopySpec, items: int, size_bytes: int, share: float = 0.5) -> Estimate:
    batch = spec.batch_size
    children = math.ceil(items / batch) if items else 0
    per_item = len(happy_path(spec)) + 1  # and the inline Map's iteration
    # one data file per 1 GB or so: the outer map's children are few
    files = max(1, math.ceil(size_bytes / 1e9))
    transitions = items * per_item + children * 3 + PARENT_TRANSITIONS + files * FILE_TRANSITIONS
    child_seconds = CHILD_START_SECONDS + math.ceil(batch / INLINE_PARALLEL) * ITEM_SECONDS
    children_rate = spec.max_concurrency * batch / child_seconds
    rate = min(children_rate, TABLE_WRITE_UNITS * share / WRITES_PER_ITEM)
    export_seconds = EXPORT_FIXED_SECONDS + size_bytes / EXPORT_BYTES_PER_SECOND
    if spec.child_type == "STANDARD":
        sfn_cost = transitions * STANDARD_PER_TRANSITION
    else:
        duration = children * child_seconds * EXPRESS_BILLED_GB * EXPRESS_PER_GB_SECOND
        sfn_cost = children * EXPRESS_PER_REQUEST + duration
        sfn_cost += PARENT_TRANSITIONS * STANDARD_PER_TRANSITION
    return Estimate(
        items=items,
        local_seconds=items / LOCAL_ITEMS_PER_SECOND,
        sfn_seconds=export_seconds + (items / rate if rate else 0.0),
        sfn_rate=rate,
        children=children,
        transitions=transitions,
        sfn_cost=sfn_cost,
        export_cost=size_bytes / 1e9 * EXPORT_PER_GB,
        reads_cost=items * S3_GET,
        bridge_cost=size_bytes / BRIDGE_BYTES_PER_SECOND * BRIDGE_GB * LAMBDA_PER_GB_SECOND,
        child_type=spec.child_type,
    )


def span(seconds: float) -> str:
    """1 d 2 h, 3 h 4 min, 5 min, 12 s."""
    s = round(seconds)
    days, rest = divmod(s, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def lines(est: Estimate) -> dict[str, Any]:
    """The plan's two lines (the local one, the step-functions one), as text."""
    local = f"~{span(est.local_seconds)} at {LOCAL_ITEMS_PER_SECOND:,.0f} items/s (one process)"
    what = (
        f"{est.transitions:,} state transitions"
        if est.child_type == "STANDARD"
        else f"{est.children:,} EXPRESS children"
    )
    sfn = (
        f"~{span(est.sfn_seconds)} (export included) at {est.sfn_rate:,.0f} items/s; "
        f"{what}: ${est.sfn_cost:,.2f}, export ${est.export_cost:,.2f}, mapping reads "
        f"${est.reads_cost:,.2f}, bridge ${est.bridge_cost:,.2f}: ${est.total_cost:,.2f} in all"
    )
    return {"local": local, "step-functions": sfn}
