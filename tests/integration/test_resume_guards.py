"""A resume never acts on a different world than the journal describes: the mapping in effect
is journaled at first use, and flags a rollback re-run overwrites are reopened and re-checked."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from engine.aws.target import Connection
from engine.plan.loader import default_runbook_path
from engine.run.engine import Engine
from engine.state.mapping_record import MappingChanged, overrides_for_step, refuse_if_changed
from tests.support.operator import OK, advance, flag
from tests.support.world import seeded_engine


@pytest.fixture
def engine(aws: Connection, tmp_path: Path) -> Engine:
    return seeded_engine(
        aws, tmp_path / "j.toml", default_runbook_path(), "world-rg", time_scale=1_000_000
    )


@pytest.mark.slow
def test_mapping_in_effect_is_journaled_and_a_different_file_is_refused(
    engine: Engine, aws: Connection, tmp_path: Path
) -> None:
    rb = engine.runbook
    file_a = tmp_path / "a.toml"
    file_a.write_text('[users]\n"user-alice" = "comp-eagle"\n')
    file_b = tmp_path / "b.toml"
    file_b.write_text('[users]\n"user-alice" = "comp-delta"\n')
    engine.options.mapping_overrides = file_a
    advance(engine, ("step", "migrate-expenses"))
    assert engine.run(only="migrate-expenses", confirm=OK).status == "done"
    record = engine.journal.mapping
    assert record["sha256"] == hashlib.sha256(file_a.read_bytes()).hexdigest()
    assert record["overrides"] == {"user-alice": "comp-eagle"}
    assert {"mapping-document", "migrate-expenses"} <= set(record["used_by"])

    # the resume hint used to drop the flag: the journaled mapping is used all the same
    default = tmp_path / "j.mapping-overrides.toml"
    got = overrides_for_step(engine.journal, rb, "migrate-projects", default, explicit=False)
    assert got == {"user-alice": "comp-eagle"}
    # a different file is refused while a step that wrote with the mapping stands
    with pytest.raises(MappingChanged, match="migrate-expenses"):
        refuse_if_changed(engine.journal, rb, file_b, explicit=True)
    refuse_if_changed(engine.journal, rb, file_a, explicit=True)  # the same file is fine

    # rolled back, the mapping may change
    assert engine.rollback("phase1", by="alice", confirm=OK).status == "done"
    assert refuse_if_changed(engine.journal, rb, file_b, explicit=True) is None


@pytest.mark.slow
def test_rollback_reopens_later_flag_steps_and_drift_waits_for_a_human(
    engine: Engine, aws: Connection
) -> None:
    fn = engine.runbook.flags.functions[0]
    advance(engine, ("step", "create-orphan-companies"))
    assert flag(aws, fn, "DUAL_WRITE_ENABLED") == "true"
    # rollback phase1 taken in Phase 3: deploy-feature-flags runs again (DUAL_WRITE off), so
    # enable-dual-write, done later on the same variable, must run again too
    assert engine.rollback("phase1", by="alice", confirm=OK).status == "done"
    assert engine.journal.steps["deploy-feature-flags"].status == "rolled_back"
    assert engine.journal.steps["enable-dual-write"].status == "rolled_back"
    assert any("enable-dual-write reopened" in a.what for a in engine.journal.audit)
    advance(engine, ("step", "create-orphan-companies"))
    assert engine.journal.steps["enable-dual-write"].status == "done"
    assert flag(aws, fn, "DUAL_WRITE_ENABLED") == "true"  # live agrees with the journal

    # someone turns dual-write off by hand: the resume waits and names all four facts
    lam = aws.client("lambda")
    env = lam.get_function_configuration(FunctionName=fn)["Environment"]["Variables"]
    lam.update_function_configuration(
        FunctionName=fn, Environment={"Variables": {**env, "DUAL_WRITE_ENABLED": "false"}}
    )
    outcome = engine.run(confirm=OK)
    assert outcome.status == "waiting"
    assert fn in outcome.message and "DUAL_WRITE_ENABLED" in outcome.message
    assert "'false' live" in outcome.message and "expects 'true'" in outcome.message
    assert engine.journal.step("create-orphan-companies").status == "pending"  # nothing ran
    lam.update_function_configuration(FunctionName=fn, Environment={"Variables": env})
    assert engine.run(until="create-orphan-companies", confirm=OK).status == "done"


def test_a_manual_step_is_acknowledged_only_while_the_run_waits_at_it(
    aws: Connection, tmp_path: Path
) -> None:
    from engine.core.outcome import CommandRefused
    from engine.core.views import NodeRef
    from tests.support.paths import MINI_RUNBOOK

    engine = seeded_engine(aws, tmp_path / "m.toml", MINI_RUNBOOK, "world-ack", time_scale=1000)
    assert engine.run().waiting == NodeRef.gate("gate-phase2")
    with pytest.raises(CommandRefused, match="only while the run waits at it"):
        engine.ack("handover", by="early")  # a phase ahead: refused, nothing recorded
    assert engine.journal.step("handover").acked_by is None
    engine.decide("gate-phase2", go=True, by="al", override="test")
    assert engine.run().waiting == NodeRef.step("handover")
    engine.ack("handover", by="al")
    assert engine.journal.step("handover").acked_by == "al"
