"""Fixed, deterministic console states for snapshot and pilot tests (no network, fixed times)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.plan.loader import default_runbook_path, load_runbook
from engine.rehearsal.world import EMBEDDED
from engine.run.core import EngineOptions
from engine.run.engine import Engine
from engine.runbook.model import Runbook
from engine.state.journal import (
    Evidence,
    Journal,
    JournalStore,
    RunMeta,
    StepState,
    TableProgress,
    Target,
    Tick,
)
from engine.state.lock import Holder
from tests.support.paths import MINI_RUNBOOK

T0 = "2024-12-01T09:00:00Z"
HOLDER = Holder("bob", "bastion-1", 4242, "2024-12-02T13:02:00Z", "console")


def load(path: Path) -> Runbook:
    return load_runbook(path).runbook


def no_network(service: str) -> Any:
    raise RuntimeError("snapshot states have no target")


def journal_for(rb: Runbook) -> Journal:
    return Journal(
        run=RunMeta(
            runbook_id=rb.runbook.id,
            runbook_sha256="f" * 64,
            operator="alice",
            target=Target(kind="embedded", identity="world-5n4p5h0t", region="us-east-1"),
            started_at=T0,
            migration_ts=T0,
        )
    )


def engine_for(rb: Runbook, journal: Journal, tmp: Path) -> Engine:
    return Engine(
        rb,
        journal,
        JournalStore(tmp / "journal.toml"),
        no_network,
        EngineOptions(operator="alice", time_scale=1.0, world=EMBEDDED),
        clock_now=lambda: datetime(2024, 12, 1, 9, 45, tzinfo=UTC),
    )


def done(journal: Journal, step_id: str, minutes: int, summary: dict | None = None) -> None:
    journal.steps[step_id] = StepState(
        status="done",
        attempts=1,
        started_at=f"2024-12-01T09:{minutes:02d}:00Z",
        finished_at=f"2024-12-01T09:{minutes + 1:02d}:00Z",
        summary=summary or {},
    )


def go(journal: Journal, gate_id: str) -> None:
    journal.gates[gate_id] = journal.gate(gate_id)
    journal.gates[gate_id].decision = "GO"
    journal.gates[gate_id].by = "alice"
    journal.gates[gate_id].at = datetime(2024, 12, 2, 9, 0, tzinfo=UTC)


def full_until(rb: Runbook, journal: Journal, step_id: str) -> None:
    """Every node before `step_id` is done / GO."""
    for n, (kind, node_id) in enumerate(rb.sequence()):
        if node_id == step_id:
            return
        if kind == "gate":
            go(journal, node_id)
        else:
            done(journal, node_id, n % 50)


def fresh(tmp: Path) -> Engine:
    rb = load(default_runbook_path())
    return engine_for(rb, journal_for(rb), tmp)


def mid_migration(tmp: Path) -> Engine:
    rb = load(default_runbook_path())
    journal = journal_for(rb)
    full_until(rb, journal, "migrate-expenses")
    journal.steps["migrate-expenses"] = StepState(
        status="running",
        attempts=1,
        started_at="2024-12-02T13:10:00Z",
        checkpoint_at="2024-12-02T14:02:00Z",
        progress={
            "construction-expenses-multi-table-expenses": TableProgress(done=1234, total=7000),
        },
    )
    return with_log(engine_for(rb, journal, tmp))


def failed_step(tmp: Path) -> Engine:
    rb = load(default_runbook_path())
    journal = journal_for(rb)
    full_until(rb, journal, "migrate-projects")
    journal.steps["migrate-projects"] = StepState(
        status="failed",
        attempts=2,
        started_at="2024-12-02T13:30:00Z",
        finished_at="2024-12-02T13:31:00Z",
        error="MappingConflict: user-x belongs to comp-a and comp-b; resolve it in "
        "mapping-overrides.toml",
        progress={"construction-expenses-multi-table-projects": TableProgress(done=40, total=90)},
    )
    return engine_for(rb, journal, tmp)


def alert(tmp: Path) -> Engine:
    rb = load(default_runbook_path())
    journal = journal_for(rb)
    full_until(rb, journal, "read-shift-10")
    journal.steps["read-shift-10"] = StepState(
        status="failed",
        attempts=1,
        started_at="2024-12-02T14:05:00Z",
        finished_at="2024-12-02T14:21:00Z",
        error="TriggerFired: error rate 5.2% > 1%",
    )
    journal.alerts.append(
        {
            "trigger": "error-rate",
            "step": "read-shift-10",
            "phase": "phase4",
            "at": "2024-12-02T14:21:00Z",
            "message": "Error rate > 1%: 5.2% over the last window",
            "measured": 5.2,
            "threshold": 1.0,
            "rollback": "rollback-reads",
        }
    )
    return engine_for(rb, journal, tmp)


def backup_arn(table: str) -> str:
    return f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/backup/01733043600000-abcd1234"


class FixedBackups:
    """A DynamoDB stand-in answering describe_backup from a fixed table: live gate
    evaluation with real evidence (ARNs, statuses), and the same answer on every run."""

    STATUS = {"mini-legacy": "AVAILABLE", "mini-company": "AVAILABLE", "mini-other": "CREATING"}

    def describe_backup(self, BackupArn: str) -> dict:
        table = BackupArn.split("/")[1]
        return {"BackupDescription": {"BackupDetails": {"BackupStatus": self.STATUS[table]}}}


def fixed_backups(service: str) -> Any:
    if service == "dynamodb":
        return FixedBackups()
    raise RuntimeError(f"snapshot states have no {service}")


def mini_gate(tmp: Path) -> Engine:
    """The mini runbook waiting at its gate: team ready ticked, one backup still CREATING,
    so the automatic check fails with its evidence."""
    rb = load(MINI_RUNBOOK)
    journal = journal_for(rb)
    done(journal, "backup-tables", 0, {"backups": 3, "reused": 0})
    journal.steps["backup-tables"].cursors["backups"] = {
        table: {"arn": backup_arn(table), "name": "pre-migration-2024-12-01"}
        for table in FixedBackups.STATUS
    }
    gate = journal.gate("gate-phase2")
    gate.ticks["team-ready"] = Tick(by="bob", at="2024-12-01T09:30:00Z")
    gate.evidence["backups-verified"] = Evidence(ok=True, detail="3 backups AVAILABLE")
    engine = engine_for(rb, journal, tmp)
    engine.clients = fixed_backups
    return engine


RUN_LOG = """\
2024-12-02T13:10:00Z INFO    [migrate-expenses] alice started migrate-expenses
2024-12-02T13:10:02Z INFO    [migrate-expenses] scanning construction-expenses-multi-table-expenses
2024-12-02T13:40:11Z WARNING [migrate-expenses] 3 items without a company: kept for review
2024-12-02T14:02:00Z INFO    [migrate-expenses] checkpoint at 1,234/7,000
2024-12-02T14:02:01Z ERROR   [run] connection reset by peer (ssh); the console went away
not a log line: ignored
"""


def with_log(engine: Engine, text: str = RUN_LOG) -> Engine:
    """A log file as the engine writes it: the console loads its tail on start."""
    engine.store.log_path.parent.mkdir(parents=True, exist_ok=True)
    engine.store.log_path.write_text(text, encoding="utf-8")
    return engine
