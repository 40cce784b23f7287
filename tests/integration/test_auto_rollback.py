"""A trigger that rolls back on its own: at 2 a.m. nobody has to press a key for the reads to
go back to legacy, and a destructive rollback is never run that way (moto, through the engine)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine.aws.target import Connection
from engine.core.views import NodeRef
from engine.plan.loader import RunbookInvalid, default_runbook_path, load_runbook
from engine.rehearsal.simulator import set_error_rate, set_errors_seen_by
from engine.run.engine import Engine
from engine.run.status_text import render_status
from engine.state.journal import JournalStore
from tests.support.operator import advance, flag
from tests.support.world import seeded_engine

OK = lambda what, token: True  # noqa: E731 - consent in a test


@pytest.fixture
def engine(aws: Connection, tmp_path: Path) -> Engine:
    return seeded_engine(
        aws, tmp_path / "j.toml", default_runbook_path(), "world-auto", time_scale=1_000_000
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("seen_by", "signal"),
    [("lambda", "Lambda errors"), ("api", "API Gateway 5XX")],  # api: handlers return 500
)
def test_errors_during_read_shift_50_roll_the_reads_back_without_a_key(
    engine: Engine, aws: Connection, tmp_path: Path, seen_by: str, signal: str
) -> None:
    advance(engine, ("step", "read-shift-50"))
    fns = engine.runbook.flags.functions
    assert all(flag(aws, fn, "READ_PERCENT") == "10" for fn in fns)
    set_errors_seen_by(engine.clients, seen_by)
    set_error_rate(engine.clients, 5.0)

    outcome = engine.run(confirm=OK)

    # the run waits where it must be decided again, and never went on to 100%
    assert outcome.status == "waiting", outcome
    assert outcome.waiting == NodeRef.gate("gate-phase4")
    assert "rollback-reads" in outcome.message and "automatically" in outcome.message
    saved = JournalStore(tmp_path / "j.toml").load()
    alert = saved.alerts[-1]
    assert alert["trigger"] == "error-rate" and alert["step"] == "read-shift-50"
    assert alert["auto_rollback"] is True and alert["rollback"] == "rollback-reads"
    assert signal in alert["message"], alert["message"]
    record = saved.rollbacks[-1]
    assert (record.id, record.status, record.by) == ("rollback-reads", "done", "trigger error-rate")
    assert saved.step("read-shift-100").attempts == 0
    for fn in fns:
        assert flag(aws, fn, "READ_FROM_COMPANY_SCOPED") == "false", fn
        assert flag(aws, fn, "DUAL_WRITE_ENABLED") == "true", fn  # only the reads went back
    snap = engine.snapshot()
    assert snap.alerts[-1].auto_rollback and snap.proposed_rollback is None
    # issue 20, item 14: the text status says why steps read "rolled_back"
    text = "\n".join(render_status(snap))
    assert "waiting at gate gate-phase4" in text
    assert "ALERT " in text and "error-rate: " in text and "during read-shift-50" in text
    assert "against a threshold of 1" in text
    assert "  rollback rollback-reads (automatic): done" in text


def _runbook_with(tmp_path: Path, old: str, new: str) -> Path:
    text = default_runbook_path().read_text()
    assert old in text
    path = tmp_path / "rb.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_check_refuses_an_auto_rollback_that_would_destroy(tmp_path: Path) -> None:
    """Phase 5's rollback restores deleted tables: a human must confirm it, so a trigger that
    would run it on its own is a runbook error with its file line."""
    path = _runbook_with(
        tmp_path,
        'text = "Error rate > 1%"\nmetric = "error_rate"\nthreshold = 1.0\n',
        'text = "Error rate > 1%"\nmetric = "error_rate"\nthreshold = 1.0\nauto_rollback = true\n',
    )
    extra = textwrap.dedent(
        """
        [[steps]]
        id = "watch-after-cleanup"
        phase = "phase5"
        title = "Watch after the cleanup"
        slot = "17:00-17:10"
        action = "watch_window"
        params = { minutes = 10 }
        """
    )
    path.write_text(path.read_text() + extra)
    with pytest.raises(RunbookInvalid) as err:
        load_runbook(path)
    text = str(err.value)
    assert "auto_rollback" in text and "watch-after-cleanup" in text and "destructive" in text
    assert f"{path}:" in text  # file:line


def test_a_step_can_turn_a_triggers_auto_rollback_off(tmp_path: Path) -> None:
    path = _runbook_with(
        tmp_path,
        "params = { percent = 10, watch_minutes = 55, auto_rollback = true }",
        "params = { percent = 10, watch_minutes = 55, auto_rollback = false }",
    )
    rb = load_runbook(path).runbook
    from engine.runbook.model import auto_rollback_for

    trigger = next(t for t in rb.triggers if t.id == "error-rate")
    assert auto_rollback_for(rb, "phase4", trigger, False) == (False, None)
    wanted, rollback = auto_rollback_for(rb, "phase4", trigger, True)
    assert wanted and rollback is not None and rollback.id == "rollback-reads"
    wanted, rollback = auto_rollback_for(rb, "phase5", trigger, True)
    assert wanted and rollback is None  # destructive: never on its own
