"""Approvals by verified identity (issue 24) on a rehearsal (moto): who ticks is verified
(STS caller ARN + OS user, journaled beside `--by`); `approvers` refuses anyone else in one
line with nothing changed; `min_approvals` needs distinct identities; `approver_not_operator`
keeps the driver from approving alone; an override lifts none of it."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from engine.aws.target import Connection, TargetSpec, identify
from engine.core.commands import Caller
from engine.core.outcome import CommandRefused
from engine.core.views import NodeRef
from engine.plan.loader import RunbookInvalid, load_runbook
from engine.rehearsal.seed import seed_world
from engine.rehearsal.world import EMBEDDED
from engine.run.core import EngineOptions
from engine.run.engine import Engine
from engine.run.report import render_report
from engine.run.status_text import render_status
from engine.session.journals import new_journal
from engine.state.journal import JournalStore
from tests.support.paths import MINI_RUNBOOK

MOTO_ARN = "arn:aws:sts::123456789012:user/moto"  # what moto's STS answers for any caller
ME = pwd.getpwuid(os.getuid()).pw_name
GATE = "gate-phase2"
TWO_ITEMS = """  { id = "team-ready", text = "Team ready", kind = "manual" },
"""


def _runbook(tmp_path: Path, gate_lines: str, items: str) -> Path:
    text = MINI_RUNBOOK.read_text()
    text = text.replace(
        'before_phase = "phase2"\n', f'before_phase = "phase2"\n{gate_lines}', 1
    ).replace(TWO_ITEMS, items, 1)
    path = tmp_path / "rb.toml"
    path.write_text(text)
    return path


def _engine(aws: Connection, rb_path: Path, journal: Path, real: bool = False) -> Engine:
    loaded = load_runbook(rb_path)
    seed_world(aws, loaded.runbook, "world-mini")
    store = JournalStore(journal)
    target = identify(TargetSpec(), aws, "world-mini")
    return Engine(
        loaded.runbook,
        new_journal(loaded, target, "alice"),
        store,
        aws.client,
        EngineOptions(operator="alice", time_scale=1000, world=EMBEDDED, real_account=real),
    )


def _at_gate(engine: Engine) -> None:
    outcome = engine.run()
    assert outcome.waiting == NodeRef.gate(GATE), outcome


QA = "os:qa-*"
ITEMS = """  { id = "team-ready", text = "Team ready", kind = "manual" },
  { id = "qa-ready", text = "QA ready", kind = "manual", approvers = ["os:qa-*"] },
"""


def test_min_approvals_two_one_is_refused_a_second_distinct_identity_goes(
    aws: Connection, tmp_path: Path
) -> None:
    engine = _engine(aws, _runbook(tmp_path, "min_approvals = 2\n", ITEMS), tmp_path / "j.toml")
    _at_gate(engine)
    engine.tick(GATE, "team-ready", by="alice")
    tick = engine.journal.gates[GATE].ticks["team-ready"]
    assert tick.by == "alice" and tick.identity is not None
    assert (tick.identity.os_user, tick.identity.arn) == (ME, MOTO_ARN)  # verified, both
    assert tick.identity.principal == f"os:{ME}" and tick.identity.rehearsal_as is None

    # a tick by an identity outside `approvers`: one line naming who may, nothing changed
    before = (tmp_path / "j.toml").read_bytes()
    with pytest.raises(CommandRefused) as refused:
        engine.tick(GATE, "qa-ready", by="alice")
    message = str(refused.value)
    assert "\n" not in message and QA in message and f"os:{ME}" in message
    assert "qa-ready" not in engine.journal.gates[GATE].ticks
    assert (tmp_path / "j.toml").read_bytes() == before

    # one approver so far: GO is refused, and an override (by one who may override the
    # unticked item) does not lift it
    qa = Caller(rehearsal_as="qa-lead")
    with pytest.raises(CommandRefused, match=r"1/2 distinct verified approvers.*no override"):
        engine.decide(GATE, go=True, by="qa", override="we are sure", caller=qa)
    assert engine.journal.gates[GATE].decision is None
    engine.tick(GATE, "qa-ready", by="bob", caller=Caller(rehearsal_as="qa-lead"))
    second = engine.journal.gates[GATE].ticks["qa-ready"].identity
    assert second is not None and second.principal == "os:qa-lead"
    assert second.os_user == ME and second.rehearsal_as == "qa-lead"  # the verified part stays
    assert "not verified" in second.text()

    engine.decide(GATE, go=True, by="alice")
    state = engine.journal.gates[GATE]
    assert state.decision == "GO" and state.identity is not None
    assert state.identity.arn == MOTO_ARN
    audit = [(a.who, a.what, a.principal) for a in engine.journal.audit]
    assert ("bob", f"ticked {GATE}/qa-ready", "os:qa-lead") in audit
    refusal = f"GO refused at {GATE}: 1/2 distinct verified approvers (os:{ME}): another"
    assert ("qa", "os:qa-lead") in [(w, p) for w, what, p in audit if what.startswith(refusal)]

    # every view shows both the name given and the identity verified
    snapshot = engine.snapshot()
    gate = snapshot.gate(GATE)
    assert gate.approved_by == (f"os:{ME}", "os:qa-lead") and gate.approval_problem is None
    item = next(i for i in gate.items if i.id == "qa-ready")
    assert item.by == "bob" and item.principal == "os:qa-lead" and MOTO_ARN in (item.identity or "")
    status = "\n".join(render_status(snapshot))
    assert f"{GATE}: GO by alice" in status and f"os:{ME}, {MOTO_ARN}" in status
    report = render_report(engine, None)
    assert "QA ready: ticked by bob at " in report and "as qa-lead (rehearsal" in report
    assert f"distinct verified approvers: os:{ME}, os:qa-lead" in report


def test_the_same_identity_twice_is_one_approval(aws: Connection, tmp_path: Path) -> None:
    items = TWO_ITEMS + '  { id = "docs", text = "Docs", kind = "manual" },\n'
    engine = _engine(aws, _runbook(tmp_path, "min_approvals = 2\n", items), tmp_path / "j.toml")
    _at_gate(engine)
    engine.tick(GATE, "team-ready", by="alice")
    engine.tick(GATE, "docs", by="bob")  # another name, the same verified identity
    with pytest.raises(CommandRefused, match=rf"1/2 distinct verified approvers \(os:{ME}\)"):
        engine.decide(GATE, go=True, by="alice")
    lines = "\n".join(render_status(engine.snapshot()))
    assert "approvals: needs 2 distinct approvers" in lines and "GO needs: 1/2" in lines


def test_the_operator_cannot_be_the_only_approver(aws: Connection, tmp_path: Path) -> None:
    engine = _engine(
        aws, _runbook(tmp_path, "approver_not_operator = true\n", TWO_ITEMS), tmp_path / "j.toml"
    )
    _at_gate(engine)  # run() records who drives: this process's identity
    assert engine.journal.run.driver is not None
    assert engine.journal.run.driver.principal == f"os:{ME}"
    engine.tick(GATE, "team-ready", by="alice")
    with pytest.raises(CommandRefused, match=rf"os:{ME} drives the run and cannot be its only"):
        engine.decide(GATE, go=True, by="alice")
    engine.untick(GATE, "team-ready", by="alice")
    engine.tick(GATE, "team-ready", by="carol", caller=Caller(rehearsal_as="carol"))
    engine.decide(GATE, go=True, by="alice")
    assert engine.journal.gates[GATE].decision == "GO"


def test_an_override_of_an_unmet_item_follows_its_approvers(
    aws: Connection, tmp_path: Path
) -> None:
    engine = _engine(aws, _runbook(tmp_path, "", ITEMS), tmp_path / "j.toml")
    _at_gate(engine)
    engine.tick(GATE, "team-ready", by="alice")
    with pytest.raises(CommandRefused, match=r"an override of gate-phase2/qa-ready needs one of"):
        engine.decide(GATE, go=True, by="alice", override="QA is on holiday")
    assert engine.journal.gates[GATE].decision is None
    engine.decide(
        GATE, go=True, by="qa", override="QA is on holiday", caller=Caller(rehearsal_as="qa-lead")
    )
    assert engine.journal.gates[GATE].override == "QA is on holiday"


def test_a_stand_in_is_refused_on_a_real_account(aws: Connection, tmp_path: Path) -> None:
    engine = _engine(aws, MINI_RUNBOOK, tmp_path / "j.toml", real=True)
    _at_gate(engine)
    with pytest.raises(CommandRefused, match=r"--as is a rehearsal-only identity"):
        engine.tick(GATE, "team-ready", by="alice", caller=Caller(rehearsal_as="bob"))
    assert "team-ready" not in engine.journal.gates[GATE].ticks
    engine.tick(GATE, "team-ready", by="alice")  # a real account: the STS identity counts
    assert engine.journal.gates[GATE].ticks["team-ready"].identity.principal == MOTO_ARN  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("approvers", "says"),
    [
        ('["arn:aws:iam::123456789012:user/bob"]', "neither a role ARN"),
        ('["arn:aws:sts::123456789012:assumed-role/Ops/bob"]', "not a session"),
        ('["bob"]', "nor an OS user"),
        ('["os:a?c"]', "nor an OS user"),
    ],
)
def test_check_refuses_a_pattern_that_names_nobody_verifiable(
    tmp_path: Path, approvers: str, says: str
) -> None:
    items = (
        f'  {{ id = "team-ready", text = "Team ready", kind = "manual", '
        f"approvers = {approvers} }},\n"
    )
    path = _runbook(tmp_path, "", items)
    with pytest.raises(RunbookInvalid) as err:
        load_runbook(path)
    text = str(err.value)
    assert says in text and "approvers" in text
    assert f"{path}:" in text  # file:line


def test_check_refuses_more_approvals_than_items_to_tick(tmp_path: Path) -> None:
    with pytest.raises(RunbookInvalid, match=r"min_approvals: 3 distinct approvers need"):
        load_runbook(_runbook(tmp_path, "min_approvals = 3\n", ITEMS))


def test_check_accepts_role_arns_and_os_users(tmp_path: Path) -> None:
    items = (
        '  { id = "team-ready", text = "Team ready", kind = "manual", approvers = '
        '["arn:aws:iam::123456789012:role/MigrationApprover", "arn:aws:iam::*:role/ops/*", '
        '"os:alice"] },\n'
    )
    rb = load_runbook(_runbook(tmp_path, "min_approvals = 1\n", items)).runbook
    assert rb.gate(GATE).items[1].approvers[1] == "arn:aws:iam::*:role/ops/*"
