"""Typed resume state: every action's cursors and summary models round-trip through the
journal's TOML, a journal written before they existed (today's dict shapes) loads and reads the
same through the typed accessors, and a hand edit that broke a cursor is one clear line (exit 2
through the CLI), never a traceback."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from engine.actions import registry
from engine.actions.cleanup.state import (
    code_missing_of,
    function_deletions_of,
    route_deletions_of,
    table_deletions_of,
)
from engine.actions.migrate.state import EntityScans, MigrateCursors, ResyncCursors
from engine.actions.prepare.backup import BackupCursors, BackupRecord, backups_of
from engine.actions.traffic.flags import flag_changes_of
from engine.actions.traffic.shift import ShiftCursors
from engine.actions.traffic.watch import worst_error_rates
from engine.actions.validate.migration import last_validation
from engine.run.resume_check import check_resume_state
from engine.runbook.model import Runbook
from engine.state.errors import JournalError
from engine.state.journal import Journal, JournalStore, StepState
from engine.state.records import Cursors, dump
from tests.support.paths import MINI_RUNBOOK
from tests.support.world import new_journal

AT = "2026-11-30T10:00:00Z"
ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/expenses/backup/01"

# Each action's cursors as the code before typed state wrote them (keys and value shapes).
TODAY: dict[str, tuple[str, dict[str, Any]]] = {
    "backup-tables": (
        "backup_tables",
        {
            "backups": {
                "expenses": {
                    "arn": ARN,
                    "name": "pre-2024",
                    "status": "AVAILABLE",
                    "size_bytes": 120,
                },
                "projects": {"arn": ARN + "2", "name": "pre-2024", "status": "CREATING"},
            },
            "pitr": ["expenses"],
        },
    ),
    "monitoring": ("create_monitoring", {"dashboard": "migration", "alarms": ["a1", "a2"]}),
    "mapping-document": ("company_mapping", {"created_companies": ["orphan-u1"]}),
    "analyze-data-volume": ("analyze_legacy", {"index": "keys.sqlite"}),
    "deploy-feature-flags": (
        "set_flags",
        {
            "flags": {
                "fn-a": {
                    "version": "3",
                    "prior": {"DUAL_WRITE_ENABLED": "false"},
                    "absent": ["READ_PERCENT"],
                    "aliases": {"live": "3"},
                    "routing": {"live": {"2": 0.1}},
                    "published": "5",
                    "moved": ["live"],
                    "applied": True,
                },
                "fn-b": {
                    "prior": {},
                    "absent": ["DUAL_WRITE_ENABLED"],
                    "aliases": {},
                    "routing": {},
                    "applied": False,
                    "fixed_versions": ["7"],
                },
            }
        },
    ),
    "monitor-dual-write": (
        "watch_window",
        {
            "remaining_seconds": 1800.0,
            "ticks": 12,
            "worst": {"error_rate": 0.42, "latency_increase": 3.5},
            "no_data": {"inconsistency": 2},
            "last_sample": {
                "sampled": 50,
                "compared": 48,
                "missing": 1,
                "unmapped": 0,
                "mismatched": 1,
                "excluded": 0,
            },
        },
    ),
    "migrate-expenses": (
        "migrate_entity",
        {
            "total_segments": 2,
            "segments": {
                "0": {"done": True},
                "1": {"key": {"userId": {"S": "u1"}, "expenseId": {"S": "e9"}}, "done": False},
            },
            "counts": {"scanned": 900, "migrated": 880, "skipped_newer": 3},
            "source_total": 1000,
        },
    ),
    "capture-baseline": (
        "capture_baseline",
        {"baseline": {"fn-a": 41.5}, "statistic": "Average", "period_seconds": 60},
    ),
    "read-shift-10": (
        "shift_reads",
        {
            "flags": {
                "fn-a": {
                    "version": "5",
                    "prior": {"READ_PERCENT": "0"},
                    "absent": [],
                    "aliases": {},
                    "routing": {},
                    "applied": True,
                }
            },
            "remaining_seconds": 0.0,
            "ticks": 3,
            "worst": {"error_rate": 1.13},
        },
    ),
    "delete-deprecated-functions": (
        "delete_functions",
        {
            "archive_dir": "archive-delete-deprecated-functions",
            "deleted": ["old-fn"],
            "already_absent": [],
            "log_groups_deleted": ["/aws/lambda/old-fn"],
            "code_missing": ["old-fn"],
        },
    ),
    "delete-legacy-routes": (
        "delete_api_routes",
        {
            "archive_dir": "archive-delete-legacy-routes",
            "api_id": "abc123",
            "archive": "api-expenses.json",
            "deleted_routes": ["GET /expenses"],
            "deleted_resources": ["/expenses"],
            "deployment_id": "d1",
            "stages_redeployed": ["prod"],
        },
    ),
    "delete-deprecated-tables": (
        "delete_tables",
        {
            "archive_dir": "archive-delete-deprecated-tables",
            "deleted": ["expenses"],
            "already_absent": ["projects"],
            "backups": {"expenses": ARN},
            "protection_disabled": ["expenses"],
        },
    ),
    "remove-old-monitoring": (
        "cleanup_monitoring",
        {
            "deleted_alarms": ["a1"],
            "deleted_metric_filters": ["/aws/lambda/old-fn f"],
            "archive": "monitoring-remove-old-monitoring.json",
        },
    ),
}
ROLLBACK_TODAY: dict[str, dict[str, Any]] = {
    "rollback-data#0": {"expenses": {"key": {"companyId": {"S": "c1"}}, "count": 40},
                        "projects": {"done": True, "count": 7}},
    "rollback-data#1": {"removed_companies": 1, "removed_memberships": 2},
    "rollback-dual-write#0": {"restored": ["fn-a"], "aliases_restored": ["fn-a:live"]},
    "rollback-cleanup#0": {"restored": ["expenses"]},
    "rollback-cleanup#1": {"restored": ["old-fn"], "placeholder_code": ["old-fn"],
                           "log_groups_restored": []},
    "rollback-cleanup#2": {"restored_routes": ["GET /expenses"], "deployment_id": "d2"},
    "rollback-cleanup#3": {"expenses": {"done": True, "count": 880}, "skipped": 2,
                           "duplicate_keys": 1},
}  # fmt: skip
VALIDATION_SUMMARY = {
    "recordCounts": {"expenses": {"source": 1000, "target": 997, "match": False}},
    "dataIntegrity": {"checksum": True},
    "performance": {"avgResponseTime": 40.0, "p99ResponseTime": 80.0, "p99Statistic": "p99",
                    "errorRate": 0.01, "invocations": 100, "windowMinutes": 60},
    "issues": {"missing": 3, "collisions": 0},
    "ok": False,
    "records_missing": 3,
    "artifact": "validation-final-validation.jsonl",
}  # fmt: skip


def _today_journal(runbook: Runbook) -> dict[str, Any]:
    """A journal as the code before typed state wrote it (the dict a TOML load gives)."""
    journal = new_journal(runbook).model_dump(mode="json", exclude_none=True)
    journal["run"]["scale_changes"] = [
        {"at": AT, "from_scale": 1.0, "to_scale": 3600.0, "by": "al"}  # "at" was text
    ]
    journal["steps"] = {
        step_id: {"status": "done", "cursors": cursors} for step_id, (_, cursors) in TODAY.items()
    }
    journal["steps"]["read-shift-10"]["status"] = "failed"  # stopped by its trigger
    journal["steps"]["final-validation"] = {"status": "done", "summary": VALIDATION_SUMMARY}
    journal["steps"]["delete-deprecated-functions"]["summary"] = {
        "deleted": ["old-fn"], "already_absent": [], "log_groups_deleted": 1,
        "code_missing": ["old-fn"],
    }  # fmt: skip
    journal["rollback_steps"] = {
        k: {"status": "done", "cursors": v} for k, v in ROLLBACK_TODAY.items()
    }
    return journal


def _store(tmp_path: Path, data: dict[str, Any]) -> JournalStore:
    """Write `data` the way the journal store does (TOML plus its closing checksum line)."""
    import hashlib

    from engine.state.journal import TRAILER

    body = tomli_w.dumps(data).encode()
    path = tmp_path / "journal.toml"
    path.write_bytes(body + TRAILER % hashlib.sha256(body).hexdigest().encode())
    return JournalStore(path)


def test_every_action_declares_its_models_and_today_covers_them(runbook: Runbook) -> None:
    """Every action that keeps resume state has a model of it, and this suite holds a journal
    of today's shape for each (a new action must add one here)."""
    covered = {action for action, _ in TODAY.values()}
    for rollback in runbook.rollbacks:
        covered |= {s.action for s in rollback.steps}
    for name, action in registry().items():
        assert issubclass(action.cursors, Cursors), name
        if action.cursors.model_fields or action.cursors.model_config.get("extra") == "allow":
            assert name in covered, f"{name}: add today's cursor shape to TODAY"


@pytest.mark.parametrize("step_id", sorted(TODAY))
def test_cursors_round_trip_through_toml(step_id: str) -> None:
    """model -> journal dict -> TOML -> model gives the same object, and the dict is TOML."""
    action = registry()[TODAY[step_id][0]]
    typed = action.cursors.model_validate(TODAY[step_id][1])
    text = tomli_w.dumps({"cursors": dump(typed)})
    again = action.cursors.model_validate(tomllib.loads(text)["cursors"])
    assert again == typed
    assert dump(again) == dump(typed)


@pytest.mark.parametrize("key", sorted(ROLLBACK_TODAY))
def test_rollback_cursors_round_trip_through_toml(key: str, runbook: Runbook) -> None:
    rollback_id, index = key.split("#")
    rollback = runbook.find_rollback(rollback_id)
    model = registry()[rollback.steps[int(index)].action].cursors
    typed = model.model_validate(ROLLBACK_TODAY[key])
    again = model.model_validate(tomllib.loads(tomli_w.dumps({"c": dump(typed)}))["c"])
    assert again == typed


def test_every_summary_model_round_trips(runbook: Runbook) -> None:
    """Each declared summary, filled with its defaults, survives TOML (no None, no objects)."""
    for name, action in registry().items():
        summary = action.summary()
        text = tomli_w.dumps({"s": dump(summary)})
        assert action.summary.model_validate(tomllib.loads(text)["s"]) == summary, name


def test_a_journal_of_today_loads_and_reads_the_same(runbook: Runbook, tmp_path: Path) -> None:
    store = _store(tmp_path, _today_journal(runbook))
    journal = store.load()
    check_resume_state(runbook, journal)
    assert journal.run.scale_changes[0].at == datetime(2026, 11, 30, 10, 0, tzinfo=UTC)

    backups = backups_of(journal, "backup-tables")
    assert backups["expenses"] == BackupRecord(
        arn=ARN, name="pre-2024", status="AVAILABLE", size_bytes=120
    )
    assert backups["projects"].status == "CREATING" and backups["projects"].size_bytes is None
    flags = flag_changes_of(journal, "deploy-feature-flags")
    assert flags["fn-a"].aliases == {"live": "3"} and flags["fn-a"].routing["live"] == {"2": 0.1}
    assert flags["fn-b"].version is None and flags["fn-b"].fixed_versions == ["7"]
    assert flag_changes_of(journal, "read-shift-10")["fn-a"].prior == {"READ_PERCENT": "0"}
    tables = table_deletions_of(journal, "delete-deprecated-tables")
    assert tables.deleted == ["expenses"] and tables.backups == {"expenses": ARN}
    assert function_deletions_of(journal, "delete-deprecated-functions").archive_dir == (
        "archive-delete-deprecated-functions"
    )
    assert route_deletions_of(journal, "delete-legacy-routes").archive == "api-expenses.json"
    assert code_missing_of(journal, "delete-deprecated-functions") == ["old-fn"]
    assert sorted(worst_error_rates(runbook, journal)) == [0.42, 1.13]
    found = last_validation(runbook, journal)
    assert found and found[0] == "final-validation" and found[1].records_missing == 3
    migrate = journal.steps["migrate-expenses"].cursors_as(MigrateCursors)
    assert migrate.segments["1"].key == {"userId": {"S": "u1"}, "expenseId": {"S": "e9"}}
    assert migrate.counts.migrated == 880
    resync = journal.rollback_steps["rollback-cleanup#3"].cursors_as(ResyncCursors)
    assert resync.count("expenses") == 880 and resync.duplicate_keys == 1
    removal = journal.rollback_steps["rollback-data#0"].cursors_as(EntityScans)
    assert removal.entity("expenses").key == {"companyId": {"S": "c1"}}

    # written back by the typed objects and loaded again: every fact reads the same
    store.save(journal)
    again = store.load()
    check_resume_state(runbook, again)
    assert backups_of(again, "backup-tables") == backups
    assert again.run.scale_changes == journal.run.scale_changes
    for step_id, (name, _) in TODAY.items():
        model = registry()[name].cursors
        assert again.steps[step_id].cursors_as(model) == journal.steps[step_id].cursors_as(model)


def test_a_checkpoint_writes_back_the_typed_cursors(runbook: Runbook, tmp_path: Path) -> None:
    """What the action changes on its typed object is what the next save journals, and a
    reader of another module sees it at once."""
    journal = new_journal(runbook)
    store = JournalStore(tmp_path / "j.toml")
    state = journal.step("backup-tables")
    cursors = state.cursors_as(BackupCursors)
    cursors.backups["expenses"] = BackupRecord(arn=ARN, name="pre")
    assert backups_of(journal, "backup-tables")["expenses"].arn == ARN  # the live object
    store.save(journal)
    on_disk = tomllib.loads((tmp_path / "j.toml").read_text().rpartition("# end")[0])
    assert on_disk["steps"]["backup-tables"]["cursors"]["backups"]["expenses"] == {
        "arn": ARN, "name": "pre", "status": "CREATING",
    }  # fmt: skip
    assert state.cursors_as(BackupCursors) is cursors  # one object for the whole step


def test_a_reader_never_cuts_down_the_owners_state(runbook: Runbook) -> None:
    """flag_changes_of reads a shift_reads step's flags; the watch keys beside them stay."""
    journal = Journal.model_validate(_today_journal(runbook))
    assert flag_changes_of(journal, "read-shift-10")["fn-a"].applied
    shift = journal.steps["read-shift-10"].cursors_as(ShiftCursors)
    assert shift.worst == {"error_rate": 1.13} and shift.ticks == 3


@pytest.mark.parametrize(
    ("step_id", "cursors", "where"),
    [
        ("backup-tables", {"backups": {"expenses": "arn:x"}}, "backups.expenses"),
        ("monitor-dual-write", {"ticks": "many"}, "ticks"),
        ("delete-deprecated-tables", {"deletd": ["expenses"]}, "deletd"),
        ("migrate-expenses", {"segments": {"0": {"done": "maybe"}}}, "segments.0.done"),
    ],
)
def test_a_broken_cursor_is_one_clear_line(
    runbook: Runbook, step_id: str, cursors: dict[str, Any], where: str
) -> None:
    journal = new_journal(runbook)
    journal.steps[step_id] = StepState(status="running", cursors=cursors)
    with pytest.raises(JournalError) as caught:
        check_resume_state(runbook, journal)
    message = str(caught.value)
    assert "\n" not in message
    assert f"steps.{step_id}.cursors.{where}" in message, message


def test_a_broken_cursor_through_the_cli_is_exit_2(tmp_path: Path) -> None:
    """`runbook status` on a hand-edited journal: exit 2, one line naming the field."""
    from engine.plan.loader import load_runbook

    mini = load_runbook(MINI_RUNBOOK).runbook
    journal = new_journal(mini)
    journal.steps["backup-tables"] = StepState(
        status="running", cursors={"backups": {"mini-legacy": "arn:x"}}
    )
    JournalStore(tmp_path / "j.toml").save(journal)
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "status", "--runbook", str(MINI_RUNBOOK),
         "--journal", str(tmp_path / "j.toml")],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "steps.backup-tables.cursors.backups.mini-legacy" in proc.stderr, proc.stderr


def test_scale_change_times_are_datetimes(runbook: Runbook) -> None:
    journal = new_journal(runbook)
    journal.run.change_scale(60.0, "al")
    at, before, after = journal.run.scale_steps()[0]
    assert isinstance(journal.run.scale_changes[0].at, datetime) and at.tzinfo is not None
    assert (before, after) == (1.0, 60.0)
    text = tomli_w.dumps(journal.model_dump(mode="json", exclude_none=True))
    assert Journal.model_validate(tomllib.loads(text)).run.scale_changes[0].at == at


def test_a_table_changed_by_hand_wins_over_the_typed_object(runbook: Runbook) -> None:
    """The journal's table edited in place after the action read it (a test, a debugger): the
    next read sees the edit instead of overwriting it with the old typed object."""
    journal = new_journal(runbook)
    state = journal.step("migrate-expenses")
    state.cursors = {"segments": {"0": {"done": True}}, "source_total": 5}
    assert state.cursors_as(MigrateCursors).segments["0"].done
    state.cursors["segments"] = {"0": {"done": False}}
    assert not state.cursors_as(MigrateCursors).segments["0"].done
    state.sync_cursors()
    assert state.cursors["segments"] == {"0": {"done": False}}


def test_validation_names_its_window_in_plan_and_real_time(world: Any, make_ctx: Any) -> None:
    """The performance block says its window the way gates, status and the console do."""
    from engine.actions.validate.migration import measure_performance

    ctx, _ = make_ctx("final-validation", world, time_scale=3600)
    performance = measure_performance(ctx, 60)
    assert performance.windowMinutes == 60
    assert performance.window.startswith("last 60 plan min = 1 s at x3600"), performance.window
    ctx1, _ = make_ctx("final-validation", world, time_scale=1)
    assert measure_performance(ctx1, 60).window == "last 60 min"


def test_a_summary_unlike_its_model_fails_the_step_naming_the_field() -> None:
    action = registry()["backup_tables"]
    assert action.summary_dict({"backups": 2, "name": "pre"}, "steps.b.summary")["backups"] == 2
    with pytest.raises(ValueError, match=r"steps\.b\.summary\.backups") as caught:
        action.summary_dict({"backups": "two"}, "steps.b.summary")
    assert "\n" not in str(caught.value)
