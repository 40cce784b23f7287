"""Token buckets with debt, the units meter, AIMD on the budget, company heat and gate
(engine/core/buckets.py), on a clock the test steps itself."""

from __future__ import annotations

from engine.core.buckets import Aimd, CompanyGate, CompanyHeat, UnitBucket, UnitMeter


class Tick:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_bucket_lets_a_request_go_until_it_is_in_debt_then_refills_at_its_rate():
    now = Tick()
    bucket = UnitBucket(100.0, now)
    assert bucket.ready()
    bucket.charge(150)  # 100 held, 50 in debt
    assert not bucket.ready()
    assert bucket.delay() == 0.5
    now.t += 0.5
    assert bucket.ready()
    now.t += 60  # an idle minute fills one second's units, not sixty
    bucket.charge(100)
    assert bucket.ready() and bucket.delay() == 0
    bucket.charge(1)
    assert not bucket.ready()


def test_a_refund_gives_back_what_dynamodb_did_not_consume():
    now = Tick()
    bucket = UnitBucket(10.0, now)
    bucket.charge(30)
    bucket.refund(25)
    assert bucket.ready()


def test_an_unbounded_bucket_never_waits_and_a_new_rate_applies_at_once():
    now = Tick()
    bucket = UnitBucket(None, now)
    bucket.charge(1e9)
    assert bucket.ready() and bucket.wait(0)
    bucket.set_rate(10.0)
    bucket.charge(20)
    assert not bucket.wait(0)


def test_the_meter_reports_units_per_second_over_its_window():
    now = Tick()
    meter = UnitMeter(10.0, now)
    for _ in range(10):
        now.t += 1
        meter.add(50)
    assert meter.rate() == 50
    assert meter.total == 500
    now.t += 20
    assert meter.rate() == 0


def test_aimd_halves_on_a_rise_and_gives_back_a_step_per_quiet_poll():
    aimd = Aimd(step=0.25)
    assert aimd.back_off("WriteThrottleEvents") == 0.5
    assert aimd.back_off("WriteThrottleEvents") == 0.25
    assert aimd.reason == "WriteThrottleEvents"
    assert aimd.recover() == 0.5
    aimd.recover()
    assert aimd.recover() == 1.0 and aimd.reason is None
    for _ in range(20):
        aimd.back_off("x")
    assert aimd.factor == aimd.floor


def test_heat_keeps_each_companys_peak_second():
    now = Tick()
    heat = CompanyHeat(now)
    heat.add("big", 300)
    heat.add("big", 200)
    heat.add("small", 10)
    now.t += 1
    heat.add("big", 100)
    assert heat.hottest(1) == [("big", 500)]
    assert heat.hottest(5) == [("big", 500), ("small", 10)]


def test_a_company_holds_at_most_its_slots_and_its_partitions_units():
    now = Tick()
    gate = CompanyGate(100.0, now)
    assert gate.try_admit("big", 60, most=2)
    assert not gate.try_admit("big", 60, most=2)  # 40 left: never in debt
    assert gate.try_admit("big", 40, most=2)
    assert not gate.try_admit("big", 1, most=3)  # its units are spent
    assert gate.try_admit("small", 10, most=2)  # the others go meanwhile
    gate.settle("big", 60, 60)
    gate.settle("big", 40, 40)
    now.t += 0.2
    assert gate.try_admit("big", 10, most=2)
    now.t += 5
    assert gate.try_admit("huge", 500, most=1)  # larger than a second's: once it is full
    assert not gate.try_admit("small", 1, most=1)  # one in flight, its limit
    assert gate.delay() == 0.0
