"""The runner on the mini runbook against moto: gates, manual steps, resume, rollback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.aws.target import Connection, TargetSpec, identify
from engine.core.events import Progress, SnapshotChanged, StepStarted
from engine.core.outcome import BadRequest, CommandRefused
from engine.core.views import NodeRef
from engine.plan.loader import load_runbook
from engine.rehearsal.seed import seed_world
from engine.rehearsal.world import EMBEDDED
from engine.run.core import EngineOptions
from engine.run.engine import Engine
from engine.session.journals import new_journal
from engine.state.journal import JournalStore
from tests.support.paths import MINI_RUNBOOK


@pytest.fixture
def mini(aws: Connection):
    loaded = load_runbook(MINI_RUNBOOK)
    seed_world(aws, loaded.runbook, "world-mini")
    return loaded


def make_engine(loaded, aws: Connection, path: Path, journal=None) -> Engine:
    store = JournalStore(path)
    if journal is None:
        target = identify(TargetSpec(), aws, "world-mini")
        journal = store.load() if store.exists() else new_journal(loaded, target, "alice")
    return Engine(
        loaded.runbook,
        journal,
        store,
        aws.client,
        EngineOptions(operator="alice", time_scale=1000, world=EMBEDDED),
    )


def backups_named(aws: Connection, table: str, prefix: str) -> list[str]:
    ddb = aws.client("dynamodb")
    return [
        b["BackupArn"]
        for b in ddb.list_backups(TableName=table)["BackupSummaries"]
        if b["BackupName"].startswith(prefix)
    ]


def test_runs_to_the_gate_and_waits(mini, aws, tmp_path) -> None:
    engine = make_engine(mini, aws, tmp_path / "j.toml")
    events: list[Any] = []
    engine.subscribe(events.append)
    outcome = engine.run()
    assert outcome.status == "waiting"
    assert outcome.waiting == NodeRef.gate("gate-phase2")
    last = [e.snapshot for e in events if isinstance(e, SnapshotChanged)][-1]
    assert last.state == "WAITING_GATE" and last.waiting == NodeRef.gate("gate-phase2")
    tables = {e.table for e in events if isinstance(e, Progress)}
    assert tables == {"mini-legacy", "mini-company", "mini-other"}
    journal = JournalStore(tmp_path / "j.toml").load()
    backups = journal.steps["backup-tables"].cursors["backups"]
    assert {b["status"] for b in backups.values()} == {"AVAILABLE"}
    assert sorted(journal.steps["backup-tables"].cursors["pitr"]) == sorted(backups)
    assert engine.status()["waiting"] == {"kind": "gate", "id": "gate-phase2"}
    log = engine.store.log_path.read_text()  # the step's story is in the log file too
    assert "INFO    [backup-tables] starting: Back up every table (attempt 1)" in log
    assert "INFO    [backup-tables] done: backups=3, reused=0, pitr_enabled=3" in log


def test_gate_refuses_go_until_items_pass_then_records_evidence(mini, aws, tmp_path) -> None:
    engine = make_engine(mini, aws, tmp_path / "j.toml")
    engine.run()
    with pytest.raises(CommandRefused, match="team-ready"):
        engine.decide("gate-phase2", go=True, by="alice")
    with pytest.raises(BadRequest, match="note"):
        engine.decide("gate-phase2", go=False, by="alice")
    engine.decide("gate-phase2", go=False, by="alice", note="QA not back yet")
    assert engine.run().waiting == NodeRef.gate("gate-phase2")  # NO-GO still waits
    engine.tick("gate-phase2", "team-ready", by="bob", note="QA back")
    evidence = engine.decide("gate-phase2", go=True, by="alice")
    assert (
        evidence["backups-verified"].ok
        and "3 backups AVAILABLE" in evidence["backups-verified"].detail
    )
    gate = JournalStore(tmp_path / "j.toml").load().gates["gate-phase2"]
    assert gate.decision == "GO" and gate.by == "alice" and gate.override is None
    assert gate.ticks["team-ready"].by == "bob"
    assert set(gate.evidence["backups-verified"].data["arns"]) == {
        "mini-legacy",
        "mini-company",
        "mini-other",
    }


def test_override_is_recorded(mini, aws, tmp_path) -> None:
    engine = make_engine(mini, aws, tmp_path / "j.toml")
    engine.run()
    engine.decide("gate-phase2", go=True, by="alice", override="QA lead approved by phone")
    gate = engine.journal.gates["gate-phase2"]
    assert gate.override == "QA lead approved by phone"
    assert any("override" in a.what for a in engine.journal.audit)


def test_only_the_waiting_gate_can_be_decided(mini, aws, tmp_path) -> None:
    engine = make_engine(mini, aws, tmp_path / "j.toml")
    with pytest.raises(CommandRefused, match="only the gate the run waits at"):
        engine.decide("gate-phase2", go=True, by="alice", override="x")


def test_manual_step_waits_for_ack_then_finishes(mini, aws, tmp_path) -> None:
    engine = make_engine(mini, aws, tmp_path / "j.toml")
    engine.run()
    engine.decide("gate-phase2", go=True, by="alice", override="rehearsal")
    outcome = engine.run()
    assert outcome.waiting == NodeRef.step("handover")
    with pytest.raises(CommandRefused):
        engine.ack("backup-tables", by="bob")
    engine.ack("handover", by="bob", note="day team informed")
    assert engine.run().status == "done"
    journal = JournalStore(tmp_path / "j.toml").load()
    assert journal.steps["handover"].acked_by == "bob"
    assert journal.steps["final-backups"].summary["backups"] == 1
    assert len(backups_named(aws, "mini-legacy", "final-")) == 1


def test_interrupted_step_resumes_without_a_second_backup(mini, aws, tmp_path) -> None:
    path = tmp_path / "j.toml"
    engine = make_engine(mini, aws, path)

    def stop_after_first_table(event: Any) -> None:
        if isinstance(event, Progress) and event.done == 1:
            engine.request_stop()

    engine.subscribe(stop_after_first_table)
    outcome = engine.run()
    assert outcome.status == "interrupted"
    journal = JournalStore(path).load()
    assert journal.steps["backup-tables"].status == "running"
    assert len(journal.steps["backup-tables"].cursors["backups"]) == 1

    again = make_engine(mini, aws, path)
    events: list[Any] = []
    again.subscribe(events.append)
    assert again.run().status == "waiting"
    started = [e for e in events if isinstance(e, StepStarted)]
    assert started[0].resumed and started[0].attempt == 2
    for table in ("mini-legacy", "mini-company", "mini-other"):
        assert len(backups_named(aws, table, "pre-migration-")) == 1


def test_backup_made_but_not_journaled_is_reused(mini, aws, tmp_path) -> None:
    """A crash between create_backup and the checkpoint: list_backups finds it by name."""
    path = tmp_path / "j.toml"
    engine = make_engine(mini, aws, path)
    name = f"pre-migration-{engine.journal.run.migration_date}"
    aws.client("dynamodb").create_backup(TableName="mini-legacy", BackupName=name)
    engine.run()
    assert len(backups_named(aws, "mini-legacy", "pre-migration-")) == 1
    assert engine.journal.steps["backup-tables"].summary["reused"] == 1


def test_until_is_inclusive_and_only_never_skips(mini, aws, tmp_path) -> None:
    engine = make_engine(mini, aws, tmp_path / "j.toml")
    with pytest.raises(CommandRefused, match="step backup-tables"):
        engine.run(only="final-backups")
    with pytest.raises(BadRequest):
        engine.run(until="no-such-step")
    outcome = engine.run(until="backup-tables")
    assert outcome.status == "done"
    assert engine.journal.steps["backup-tables"].status == "done"
    assert engine.journal.step("handover").status == "pending"
    assert engine.run(only="backup-tables").message.endswith("already done")
    with pytest.raises(CommandRefused, match="gate gate-phase2"):
        engine.run(only="final-backups")


def test_destructive_rollback_needs_consent_and_reopens_the_gate(mini, aws, tmp_path) -> None:
    engine = make_engine(mini, aws, tmp_path / "j.toml")
    engine.run()
    engine.decide("gate-phase2", go=True, by="alice", override="rehearsal")
    engine.ack("handover", by="bob")
    engine.run()
    preview = engine.preview_rollback("phase2")
    assert preview.steps[0].calls[0].split()[0].endswith(".create_backup")
    declined = engine.rollback("phase2", by="alice", confirm=lambda what, token: False)
    assert declined.status == "declined"
    assert engine.journal.rollbacks == []
    outcome = engine.rollback("phase2", by="alice", confirm=lambda what, token: token == "phase2")
    assert outcome.status == "done"
    journal = JournalStore(tmp_path / "j.toml").load()
    assert journal.rollbacks[0].status == "done"
    assert journal.steps["handover"].status == "rolled_back"
    assert journal.gates["gate-phase2"].decision is None
    assert engine.waiting() == NodeRef.gate("gate-phase2")
    assert len(backups_named(aws, "mini-company", "rollback-safety-")) == 1
    with pytest.raises(BadRequest):
        engine.rollback("phase1", by="alice")


def test_status_json_before_any_run_lists_every_step_pending(tmp_path, capsys) -> None:
    import json

    from engine.cli.app import main

    assert (
        main(
            [
                "status",
                "--json",
                "--runbook",
                str(MINI_RUNBOOK),
                "--journal",
                str(tmp_path / "none.toml"),
            ]
        )
        == 0
    )
    status = json.loads(capsys.readouterr().out)
    assert status["run"] is None and status["state"] == "READY"
    assert status["steps"] and {s["status"] for s in status["steps"]} == {"pending"}
    assert status["next_node"] == {"kind": "step", "id": "backup-tables"}
    assert not (tmp_path / "none.toml").exists()  # status writes nothing


def test_a_journal_of_the_previous_version_still_loads(mini, aws, tmp_path) -> None:
    """Before the snapshot: acceptance was a cursor key, rollback records had cursors, the
    step log had no gate lines. Such a journal loads, and its findings still wait for `ack`."""
    engine = make_engine(mini, aws, tmp_path / "j.toml")
    engine.run()
    raw = engine.store.path.read_text()
    state = engine.journal.step("backup-tables")
    state.status, state.error = "failed", "validation found problems"
    engine.save()
    # the old marker: a key among the step's cursors, no engine field
    text = engine.store.path.read_text()
    body = text.rpartition("# end of journal")[0]
    body = body.replace(
        "[steps.backup-tables.cursors]\n",
        "[steps.backup-tables.cursors]\nneeds_acceptance = true\n",
    )
    body = body.replace("needs_acceptance = false\n", "")
    import hashlib

    from engine.state.journal import TRAILER

    engine.store.path.write_bytes(
        body.encode() + TRAILER % hashlib.sha256(body.encode()).hexdigest().encode()
    )
    assert "needs_acceptance = true" in engine.store.path.read_text() and raw
    reopened = make_engine(mini, aws, tmp_path / "j.toml")
    assert reopened.waiting() == NodeRef.step("backup-tables")
    assert reopened.snapshot().state == "WAITING_ACK"
    reopened.ack("backup-tables", by="alice", note="known")
    reopened.run(until="backup-tables")
    assert reopened.journal.steps["backup-tables"].status == "done"
    assert "needs_acceptance" not in reopened.journal.steps["backup-tables"].cursors


def test_a_snapshot_is_immutable_and_survives_json_to_another_process(mini, aws, tmp_path):
    """Watchers in other processes receive the snapshot as JSON: it comes back equal."""
    from pydantic import ValidationError

    from engine.core.views import RunSnapshot

    engine = make_engine(mini, aws, tmp_path / "j.toml")
    engine.run()
    snapshot = engine.snapshot()
    again = RunSnapshot.model_validate_json(snapshot.model_dump_json())
    assert again == snapshot
    assert again.gate("gate-phase2").met == snapshot.gate("gate-phase2").met
    with pytest.raises(ValidationError):
        snapshot.state = "DONE"  # frozen
    engine.journal.step("handover").status = "done"  # the live journal moves on...
    assert snapshot.step("handover").status == "pending"  # ...the snapshot does not
