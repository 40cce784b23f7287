"""Flags, read shifts and watch windows against moto (mock_aws), through the actions."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
import tomli_w

from engine.actions.traffic.watch import WATCH_PROGRESS, TriggerFired
from engine.core.clock import Interrupted
from engine.core.events import Alert, MetricSample, Progress
from engine.rehearsal import simulator
from tests.support.actions import SECRET, env, run, step_params


def test_set_flags_merge_versions_restore(world, make_ctx, runbook, tmp_path):
    fns = runbook.flags.functions
    before = {fn: env(world, fn) for fn in fns}
    ctx, events = make_ctx("deploy-feature-flags", world)
    journal = ctx.journal
    s = run(ctx, "set_flags", step_params(runbook, "deploy-feature-flags"))
    assert s["functions"] == 4 and s["changed"] == 4
    for fn in fns:
        e = env(world, fn)
        assert {k: e[k] for k in before[fn]} == before[fn]  # every other variable survives
        assert e["DUAL_WRITE_ENABLED"] == "false" and e["READ_PERCENT"] == "0"
        entry = ctx.cursors["flags"][fn]
        assert entry["applied"] and entry["prior"] == {}
        assert sorted(entry["absent"]) == sorted(runbook.flags.names())
        versions = world.client("lambda").list_versions_by_function(FunctionName=fn)["Versions"]
        assert entry["version"] in [v["Version"] for v in versions]

    ctx2, events2 = make_ctx("enable-dual-write", world, journal=journal)
    run(ctx2, "set_flags", step_params(runbook, "enable-dual-write"))
    fn0 = fns[0]
    assert env(world, fn0)["DUAL_WRITE_ENABLED"] == "true"
    assert ctx2.cursors["flags"][fn0]["prior"] == {"DUAL_WRITE_ENABLED": "false"}
    assert ctx2.cursors["flags"][fn0]["absent"] == []

    # idempotent re-run: nothing changes, no second version
    lam = world.client("lambda")
    n_versions = len(lam.list_versions_by_function(FunctionName=fn0)["Versions"])
    again = run(ctx2, "set_flags", step_params(runbook, "enable-dual-write"))
    assert again["changed"] == 0
    assert len(lam.list_versions_by_function(FunctionName=fn0)["Versions"]) == n_versions

    # secrets never reach the journal, the events or artifacts
    text = (tmp_path / "journal.toml").read_text()
    assert "enable-dual-write" in text and SECRET not in text
    assert "API_SIGNING_SECRET" not in text and "LOG_LEVEL" not in text
    assert SECRET not in repr(events + events2)

    # rollback-dual-write: exactly the priors of enable-dual-write
    rctx, _ = make_ctx("rollback-dual-write#0", world, journal=journal)
    r = run(rctx, "restore_flags", {"steps": ["enable-dual-write"]})
    assert r["changed"] == 4
    for fn in fns:
        e = env(world, fn)
        assert e["DUAL_WRITE_ENABLED"] == "false" and e["API_SIGNING_SECRET"] == SECRET
    # restoring past the deployment removes the flags (absent before), others intact
    rctx2, _ = make_ctx("rollback-x#0", world, journal=journal)
    run(rctx2, "restore_flags", {"steps": ["enable-dual-write", "deploy-feature-flags"]})
    assert {fn: env(world, fn) for fn in fns} == before


def test_set_flags_resume_keeps_priors(world, make_ctx, runbook):
    ctx, _ = make_ctx("deploy-feature-flags", world)
    run(ctx, "set_flags", step_params(runbook, "deploy-feature-flags"))
    ctx2, _ = make_ctx("enable-dual-write", world, journal=ctx.journal)
    run(ctx2, "set_flags", step_params(runbook, "enable-dual-write"))
    fn = runbook.flags.functions[0]
    # a crash after the change but before it was marked applied
    ctx2.cursors["flags"][fn]["applied"] = False
    version = ctx2.cursors["flags"][fn]["version"]
    run(ctx2, "set_flags", step_params(runbook, "enable-dual-write"))
    assert ctx2.cursors["flags"][fn]["prior"] == {"DUAL_WRITE_ENABLED": "false"}
    assert ctx2.cursors["flags"][fn]["version"] == version


def test_set_flags_refuses_non_flag_variables(world, make_ctx):
    ctx, _ = make_ctx("deploy-feature-flags", world)
    with pytest.raises(Exception, match="not flag variables"):
        run(ctx, "set_flags", {"values": {"API_SIGNING_SECRET": "x"}})


def _to_phase4(world, make_ctx, runbook, scale: float = 20000.0):
    ctx, _ = make_ctx("deploy-feature-flags", world, time_scale=scale)
    journal = ctx.journal
    run(ctx, "set_flags", step_params(runbook, "deploy-feature-flags"))
    c, _ = make_ctx("enable-dual-write", world, journal=journal, time_scale=scale)
    run(c, "set_flags", step_params(runbook, "enable-dual-write"))
    c, _ = make_ctx("capture-baseline", world, journal=journal, time_scale=scale)
    base = run(c, "capture_baseline", step_params(runbook, "capture-baseline"))
    assert base["functions"] == 4 and base["statistic"] == "Average"
    return journal


def test_shift_reads_error_trigger_then_rollback(world, make_ctx, runbook):
    journal = _to_phase4(world, make_ctx, runbook)
    ok, ev = make_ctx("read-shift-10", world, journal=journal, time_scale=20000.0)
    s = run(ok, "shift_reads", {"percent": 10, "watch_minutes": 120})
    assert s["ticks"] == 2 and s["worst"]["error_rate"] == 0.0
    assert s["max_error_rate_percent"] == 0.0
    assert any(isinstance(e, MetricSample) and e.metric == "error_rate" for e in ev)
    assert env(world, runbook.flags.functions[0])["READ_PERCENT"] == "10"

    simulator.set_error_rate(world.client, 5)
    assert simulator.get_error_rate(world.client) == 5.0
    ctx, events = make_ctx("read-shift-50", world, journal=journal, time_scale=20000.0)
    with pytest.raises(TriggerFired, match="error-rate"):
        run(ctx, "shift_reads", {"percent": 50, "watch_minutes": 60})
    alert = next(e for e in events if isinstance(e, Alert))
    assert alert.trigger_id == "error-rate" and alert.proposed_rollback == "rollback-reads"
    assert alert.measured > 1.0 and alert.step_id == "read-shift-50"
    assert journal.alerts[-1]["trigger"] == "error-rate"
    assert journal.alerts[-1]["rollback"] == "rollback-reads"
    tomli_w.dumps({"a": journal.alerts})

    rctx, _ = make_ctx("rollback-reads#0", world, journal=journal)
    rb_steps = runbook.rollbacks[2].steps[0].params
    run(rctx, "restore_flags", rb_steps)
    for fn in runbook.flags.functions:
        e = env(world, fn)
        assert e["READ_FROM_COMPANY_SCOPED"] == "false" and e["READ_PERCENT"] == "0"
        assert e["DUAL_WRITE_ENABLED"] == "true" and e["API_SIGNING_SECRET"] == SECRET


def test_latency_trigger(world, make_ctx, runbook):
    journal = _to_phase4(world, make_ctx, runbook)
    simulator.set_latency_factor(world.client, 1.5)
    ctx, events = make_ctx("read-shift-10", world, journal=journal, time_scale=20000.0)
    with pytest.raises(TriggerFired, match="latency"):
        run(ctx, "shift_reads", {"percent": 10, "watch_minutes": 60, "triggers": ["latency"]})
    assert next(e for e in events if isinstance(e, Alert)).measured > 20.0


def test_inconsistency_trigger(world, make_ctx, runbook):
    ctx, _ = make_ctx("deploy-feature-flags", world)
    run(ctx, "set_flags", step_params(runbook, "deploy-feature-flags"))
    ent = runbook.entity("expenses")
    ddb = world.client("dynamodb")
    legacy = ddb.scan(TableName=ent.source, Limit=1)["Items"][0]
    user = legacy["userId"]["S"]
    members = ddb.scan(TableName=runbook.mapping.company_users_table)["Items"]
    company = next(m["companyId"]["S"] for m in members if m["userId"]["S"] == user)
    twin = dict(legacy, companyId={"S": company})
    twin.pop("userId")
    ddb.put_item(TableName=ent.target, Item=twin)
    wctx, _ = make_ctx("monitor-dual-write", world, journal=ctx.journal, time_scale=20000.0)
    s = run(wctx, "watch_window", {"minutes": 30, "triggers": ["inconsistency"]})
    assert s["worst"]["inconsistency"] == 0.0 and wctx.cursors["last_sample"]["compared"] == 1
    twin["amount"] = {"N": "999999"}
    ddb.put_item(TableName=ent.target, Item=twin)
    wctx2, events = make_ctx("monitor-dual-write", world, journal=ctx.journal, time_scale=2e4)
    wctx2.state.cursors.clear()
    with pytest.raises(TriggerFired, match="inconsistency"):
        run(wctx2, "watch_window", {"minutes": 30, "triggers": ["inconsistency"]})
    alert = next(e for e in events if isinstance(e, Alert))
    assert alert.proposed_rollback == "rollback-dual-write"


def test_watch_window_interrupted_resumes_remaining(world, make_ctx, runbook):
    ctx, _ = make_ctx("deploy-feature-flags", world)
    run(ctx, "set_flags", step_params(runbook, "deploy-feature-flags"))
    scale = 20000.0  # a tick = 4000 plan seconds = 0.2 s
    wctx, _ = make_ctx("monitor-dual-write", world, journal=ctx.journal, time_scale=scale)
    stop = wctx.clock.stop
    emit = wctx.emit

    def stop_after_first_tick(event: Any) -> None:
        emit(event)
        if isinstance(event, Progress) and event.table == WATCH_PROGRESS and event.done > 0:
            stop.set()

    wctx.emit = stop_after_first_tick
    with pytest.raises(Interrupted):
        run(wctx, "watch_window", {"minutes": 200, "triggers": ["error-rate"]})
    left = wctx.cursors["remaining_seconds"]
    assert left == 200 * 60 - 4000 and wctx.cursors["ticks"] == 1

    # a restart: a fresh context on the same journal; the wait still has `left` to go
    rctx, _ = make_ctx("monitor-dual-write", world, journal=ctx.journal, time_scale=scale)
    slept: list[float] = []
    real_sleep = rctx.clock.sleep_plan
    rctx.clock.sleep_plan = lambda s: (slept.append(s), real_sleep(s))[1]
    s = run(rctx, "watch_window", {"minutes": 200, "triggers": ["error-rate"]})
    assert sum(slept) == left and s["ticks"] == 3 and rctx.cursors["remaining_seconds"] == 0


def test_watch_stop_is_honoured_quickly(world, make_ctx, runbook):
    wctx, _ = make_ctx("monitor-dual-write", world, time_scale=1.0)  # ticks of 60 real s
    timer = threading.Timer(0.3, wctx.clock.stop.set)
    timer.start()
    import time

    t0 = time.monotonic()
    with pytest.raises(Interrupted):
        run(wctx, "watch_window", {"minutes": 120, "triggers": ["error-rate"]})
    assert time.monotonic() - t0 < 2.0
    assert wctx.cursors["remaining_seconds"] == 120 * 60


def test_consistency_sample_maps_users_like_the_migration(world, make_ctx, runbook):
    """The sampler resolves a user through the mapping overrides (not the first membership),
    and a sample covers a small table whatever random segment it starts at."""
    from engine.actions.traffic.sample import sample_consistency

    ent = runbook.entity("expenses")
    ddb = world.client("dynamodb")
    legacy = ddb.scan(TableName=ent.source, Limit=1)["Items"][0]
    user = legacy["userId"]["S"]
    ctx, _ = make_ctx("monitor-dual-write", world)
    ctx.overrides_path().parent.mkdir(parents=True, exist_ok=True)
    ctx.overrides_path().write_text(f'[users]\n"{user}" = "comp-override"\n')
    twin = dict(legacy, companyId={"S": "comp-override"})
    twin.pop("userId")
    ddb.put_item(TableName=ent.target, Item=twin)
    total = ddb.scan(TableName=ent.source, Select="COUNT")["Count"]
    assert total <= runbook.monitoring.sample_size  # the seeded table fits in one sample
    for seed in range(4):
        counts = sample_consistency(ctx, random.Random(seed))
        assert counts["compared"] >= 1 and counts["mismatched"] == 0, counts
        assert counts["sampled"] >= total


def test_consistency_sample_ignores_set_order_and_reported_exclusions(world, make_ctx, runbook):
    """String sets in another wire order are the same set; an application's newer twin and a
    malformed legacy item were reported by the migration and are not inconsistencies."""
    from engine.actions.traffic.sample import sample_consistency

    ent = runbook.entity("expenses")
    ddb = world.client("dynamodb")
    ctx, _ = make_ctx("monitor-dual-write", world)
    items = ddb.scan(TableName=ent.source)["Items"]
    members = ddb.scan(TableName=runbook.mapping.company_users_table)["Items"]
    company = {m["userId"]["S"]: m["companyId"]["S"] for m in members}
    first, second = items[0], items[1]
    ddb.put_item(TableName=ent.source, Item=dict(first, tags={"SS": ["a", "b"]}))
    twin = {k: v for k, v in first.items() if k != "userId"}
    twin |= {"companyId": {"S": company[first["userId"]["S"]]}, "tags": {"SS": ["b", "a"]}}
    ddb.put_item(TableName=ent.target, Item=twin)
    newer = {k: v for k, v in second.items() if k != "userId"}
    newer |= {
        "companyId": {"S": company[second["userId"]["S"]]},
        "createdBy": second["userId"],
        "updatedAt": {"S": "2099-01-01T00:00:00Z"},
        "amount": {"N": "123456"},
    }
    ddb.put_item(TableName=ent.target, Item=newer)
    malformed = {k: v for k, v in first.items() if k != "userId"} | {"expenseId": {"S": "x-1"}}
    ddb.put_item(
        TableName=ent.source, Item=dict(malformed, userId={"S": "user-x"}, amount={"S": "n/a"})
    )
    counts = sample_consistency(ctx, random.Random(1))
    assert counts["mismatched"] == 0, counts
    assert counts["compared"] >= 1 and counts["excluded"] >= 2, counts
