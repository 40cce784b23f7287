"""A table's capacity, the migration's budget in it, and when the application suffers: pure
calculations (engine/aws/capacity.py reads what they take; docs/performance.md).

A provisioned table's budget is `share` of its provisioned units (auto scaling moves them:
they are read again every few seconds). An on-demand table's is `share` of its maximum
(OnDemandThroughput), else the units per second the operator granted (runbook
`capacity.on_demand_*_units`), else none: the migration is then bounded by its `rate` and
`in_flight` (and AIMD on the application's throttles) only, and the log says so. Warm
throughput (what an on-demand table serves at once; it grows with use) is shown, not a bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Kind = Literal["read", "write"]
PROVISIONED = "PROVISIONED"
ON_DEMAND = "PAY_PER_REQUEST"
WCU_PER_ITEM = {"transact": 2.0, "put": 1.0}  # per item of at most 1 KB, by write path
ITEM_UNIT_BYTES = {"read": 4096, "write": 1024}  # one RCU reads 4 KB, one WCU writes 1 KB


@dataclass(frozen=True)
class Units:
    """One direction of a table's capacity, as DescribeTable and auto scaling report it."""

    provisioned: float | None = None  # units now (provisioned mode)
    scaling: tuple[float, float] | None = None  # auto scaling (min, max)
    maximum: float | None = None  # on-demand OnDemandThroughput max (None: none set)
    warm: float | None = None  # on-demand WarmThroughput units per second


@dataclass(frozen=True)
class TableCapacity:
    table: str
    mode: str  # PROVISIONED | PAY_PER_REQUEST
    read: Units = Units()
    write: Units = Units()

    def units(self, kind: Kind) -> Units:
        return self.read if kind == "read" else self.write

    def basis(self, kind: Kind) -> float | None:
        """What `share` applies to: provisioned units now, or the on-demand maximum; None when
        the table states no bound."""
        u = self.units(kind)
        return u.provisioned if self.mode == PROVISIONED else u.maximum

    def describe(self, kind: Kind) -> str:
        """One phrase for the log: `provisioned 1,000 WCU (auto scaling 500-4,000)`."""
        u = self.units(kind)
        name = "RCU" if kind == "read" else "WCU"
        if self.mode == PROVISIONED:
            text = f"provisioned {_n(u.provisioned)} {name}"
            if u.scaling:
                text += f" (auto scaling {_n(u.scaling[0])}-{_n(u.scaling[1])})"
            return text
        parts = []
        if u.maximum is not None:
            parts.append(f"max {_n(u.maximum)} {name}")
        if u.warm is not None:
            parts.append(f"warm {_n(u.warm)} {name}")
        return "on-demand" + (f" ({', '.join(parts)})" if parts else ", no maximum")


def _n(value: float | None) -> str:
    return "?" if value is None else f"{value:,.0f}"


def budget_units(
    cap: TableCapacity | None, kind: Kind, share: float, on_demand_units: float | None
) -> float | None:
    """Units per second the migration may consume on this table; None: unbounded."""
    if cap is None:
        return None
    basis = cap.basis(kind)
    if basis is not None:
        return basis * share
    if cap.mode != PROVISIONED and on_demand_units is not None:
        return on_demand_units  # the operator's rate for an unbounded on-demand table
    return None


def write_units(size: int, write_path: str) -> float:
    """WCU one item costs: 1 per started KB, doubled in a transaction."""
    return max(1, -(-size // ITEM_UNIT_BYTES["write"])) * WCU_PER_ITEM.get(write_path, 1.0)


def company_ceiling(partition_units: float, share: float) -> float:
    """WCU per second one company (one partition key) may take: `share` of its partition."""
    return partition_units * share


def rise_above(baseline: Sequence[float], recent: Sequence[float]) -> float | None:
    """The recent one-minute value that rose above the baseline's highest minute, or None.
    A baseline with no data counts as 0: any throttle or failure now is a rise."""
    ceiling = max(baseline, default=0.0)
    worst = max(recent, default=0.0)
    return worst if worst > ceiling else None
