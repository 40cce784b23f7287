"""The capacity budget's pure parts: a table's basis, the budget, unit costs, rises above the
baseline (engine/core/capacity.py)."""

from __future__ import annotations

import pytest

from engine.core.capacity import (
    ON_DEMAND,
    PROVISIONED,
    TableCapacity,
    Units,
    budget_units,
    company_ceiling,
    rise_above,
    write_units,
)


def provisioned(wcu: float, rcu: float, scaling: tuple[float, float] | None = None):
    return TableCapacity(
        "t", PROVISIONED, read=Units(provisioned=rcu), write=Units(provisioned=wcu, scaling=scaling)
    )


def test_a_provisioned_tables_budget_is_its_share_of_the_units_now():
    cap = provisioned(1000, 400, scaling=(500, 4000))
    assert budget_units(cap, "write", 0.5, None) == 500
    assert budget_units(cap, "read", 0.25, None) == 100
    assert cap.describe("write") == "provisioned 1,000 WCU (auto scaling 500-4,000)"


def test_on_demand_takes_its_maximum_else_the_operators_units_never_warm_throughput():
    both = TableCapacity("t", ON_DEMAND, write=Units(maximum=2000, warm=4000))
    assert budget_units(both, "write", 0.5, 99) == 1000  # the maximum wins
    assert both.describe("write") == "on-demand (max 2,000 WCU, warm 4,000 WCU)"
    warm = TableCapacity("t", ON_DEMAND, write=Units(warm=4000))  # it grows with use
    assert budget_units(warm, "write", 0.5, 99) == 99
    assert budget_units(warm, "write", 0.5, None) is None
    bare = TableCapacity("t", ON_DEMAND)
    assert budget_units(bare, "write", 0.5, 300) == 300  # the operator's rate as given
    assert budget_units(bare, "write", 0.5, None) is None  # unbounded: said in the log
    assert bare.describe("write") == "on-demand, no maximum"
    assert budget_units(None, "write", 0.5, 300) is None


@pytest.mark.parametrize(
    ("size", "path", "units"),
    [
        (300, "transact", 2.0),
        (300, "put", 1.0),
        (1024, "put", 1.0),
        (1025, "put", 2.0),
        (2500, "transact", 6.0),
    ],
)
def test_an_items_write_units_follow_its_size_and_the_write_path(size, path, units):
    assert write_units(size, path) == units


def test_a_company_takes_its_share_of_one_partition():
    assert company_ceiling(1000, 0.5) == 500


def test_a_rise_is_a_minute_above_the_baselines_highest():
    assert rise_above([0, 2, 1], [1, 2]) is None
    assert rise_above([0, 2, 1], [1, 3]) == 3
    assert rise_above([], [1]) == 1  # no throttles before: any now is a rise
    assert rise_above([], []) is None
