"""The CLI contract: exit codes, status JSON, plan writes nothing, locks, SIGKILL resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.aws.target import local_connection
from engine.cli.app import main
from engine.rehearsal.embedded import read_record, record_path_for, stop_world
from engine.state.journal import JournalStore
from engine.state.lock import JournalLock
from tests.support.paths import MINI_RUNBOOK
from tests.support.world import seed_endpoint

MINI = ["--runbook", str(MINI_RUNBOOK)]


def runbook_cli(*args: str, env: dict | None = None, timeout: float = 120):
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_plan_lists_calls_and_writes_nothing(tmp_path: Path, capsys) -> None:
    state = Path(os.environ["XDG_STATE_HOME"])
    assert main(["plan", *MINI]) == 0
    out = capsys.readouterr().out
    assert "GATE gate-phase2" in out
    assert "dynamodb.create_backup  mini-legacy" in out
    assert "operator.acknowledge  handover" in out
    assert not state.exists()


def test_endpoint_run_exit_codes_and_status_json(moto_endpoint: str, runbook, tmp_path, capsys):
    from engine.plan.loader import load_runbook

    seed_endpoint(moto_endpoint, load_runbook(MINI_RUNBOOK).runbook)
    journal = tmp_path / "j.toml"
    common = [*MINI, "--endpoint-url", moto_endpoint, "--journal", str(journal)]
    assert main(["status", *common]) == 0  # no run yet: every step pending
    assert "no run yet" in capsys.readouterr().out
    assert main(["run", *common, "--yes", "--time-scale", "100"]) == 3
    assert main(["decide", "gate-phase2", "--go", "--by", "al", *common]) == 1
    assert main(["decide", "gate-phase2", "--no-go", "--by", "al", *common]) == 2  # no note
    assert main(["tick", "gate-phase2", "nope", "--by", "al", *common]) == 2
    capsys.readouterr()
    assert main(["tick", "gate-phase2", "team-ready", "--by", "al", *common]) == 0
    assert "gate-phase2/team-ready: ticked by al" in capsys.readouterr().out
    assert main(["decide", "gate-phase2", "--go", "--by", "al", *common]) == 0
    assert main(["run", *common]) == 3  # manual step waits
    capsys.readouterr()
    assert main(["status", "--json", *common]) == 0
    status = json.loads(capsys.readouterr().out)
    assert {"run", "state", "steps", "gates", "waiting", "rollbacks", "alerts"} <= set(status)
    assert status["state"] == "WAITING_ACK"
    assert status["waiting"] == {"kind": "step", "id": "handover"}
    step = status["steps"][0]
    assert {"id", "phase", "kind", "status", "attempts", "progress"} <= set(step)
    legacy = next(t for t in step["progress"] if t["table"] == "mini-legacy")
    assert (legacy["done"], legacy["total"]) == (1, 1)
    gate = status["gates"][0]
    assert gate["decision"] == "GO" and gate["by"] == "al"
    assert {k: gate["items"][1][k] for k in ("id", "kind", "ok")} == {
        "id": "team-ready",
        "kind": "manual",
        "ok": True,
    }
    assert main(["ack", "handover", "--by", "bo", *common]) == 0
    assert "handover: acknowledged by bo" in capsys.readouterr().out
    with JournalLock(journal, "run"):
        assert main(["run", *common]) == 4
    assert "journal is locked by" in capsys.readouterr().err
    assert main(["run", *common]) == 0
    assert main(["rollback", "phase2", "--yes", "--by", "carol", *common]) == 0
    assert JournalStore(journal).load().rollbacks[-1].by == "carol"
    # another endpoint is another target: refused, journal untouched
    before = journal.read_bytes()
    other = [*MINI, "--endpoint-url", "http://127.0.0.1:9", "--journal", str(journal)]
    assert main(["run", *other]) == 2
    assert "refusing to resume against a different target" in capsys.readouterr().err
    assert journal.read_bytes() == before


def test_bad_input_exits_2(tmp_path: Path, capsys) -> None:
    journal = tmp_path / "j.toml"
    journal.write_text("schema_version = 1\n[run\n")
    assert main(["run", *MINI, "--journal", str(journal)]) == 2
    assert "is truncated or was edited" in capsys.readouterr().err
    assert journal.read_text() == "schema_version = 1\n[run\n"
    assert main(["run", *MINI, "--profile", "prod", "--time-scale", "60"]) == 2
    assert "refused against a real account" in capsys.readouterr().err


def test_runbook_change_needs_acceptance(moto_endpoint: str, tmp_path: Path, capsys) -> None:
    from engine.plan.loader import load_runbook

    seed_endpoint(moto_endpoint, load_runbook(MINI_RUNBOOK).runbook)
    changed = tmp_path / "rb.toml"
    changed.write_text(MINI_RUNBOOK.read_text())
    common = [
        "--runbook",
        str(changed),
        "--endpoint-url",
        moto_endpoint,
        "--journal",
        str(tmp_path / "j.toml"),
    ]
    assert main(["run", *common, "--until", "backup-tables"]) == 0
    changed.write_text(changed.read_text().replace("Team ready", "Team ready (on-call)"))
    assert main(["run", *common]) == 2
    assert "--accept-runbook-change" in capsys.readouterr().err
    assert main(["run", *common, "--accept-runbook-change"]) == 3


def test_no_tty_prompt_without_yes_exits_2(moto_endpoint: str, tmp_path: Path) -> None:
    """A destructive rollback would prompt; with no TTY and no --yes it must not hang."""
    from engine.plan.loader import load_runbook

    seed_endpoint(moto_endpoint, load_runbook(MINI_RUNBOOK).runbook)
    common = [*MINI, "--endpoint-url", moto_endpoint, "--journal", str(tmp_path / "j.toml")]
    assert runbook_cli("run", *common, "--until", "backup-tables").returncode == 0
    assert runbook_cli("tick", "gate-phase2", "team-ready", "--by", "al", *common).returncode == 0
    assert runbook_cli("decide", "gate-phase2", "--go", "--by", "al", *common).returncode == 0
    proc = runbook_cli("rollback", "phase2", *common)
    assert proc.returncode == 2, proc.stderr
    assert "--yes" in proc.stderr


@pytest.mark.slow
def test_sigkill_mid_backup_then_resume_makes_no_second_backup(tmp_path: Path) -> None:
    """The embedded world outlives a killed console; the re-run completes the step."""
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    journal = tmp_path / "state" / "runbook-console" / "mini--embedded.toml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "run", *MINI, "--yes"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    try:
        for line in proc.stdout:
            if "created backup" in line:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        record = read_record(record_path_for(journal))
        assert record is not None
        second = runbook_cli("run", *MINI, "--yes", env=env)
        assert second.returncode == 3, second.stdout + second.stderr
        assert "resuming backup-tables" in second.stdout
        ddb = local_connection(record.url, "us-east-1").client("dynamodb")
        for table in ("mini-legacy", "mini-company", "mini-other"):
            names = [b["BackupName"] for b in ddb.list_backups(TableName=table)["BackupSummaries"]]
            assert len(names) == 1, (table, names)
        status = json.loads(runbook_cli("status", "--json", *MINI, env=env).stdout)
        assert status["steps"][0]["status"] == "done"
        assert status["steps"][0]["attempts"] == 2
    finally:
        proc.kill()
        stop_world(record_path_for(journal))


@pytest.mark.slow
def test_sigterm_checkpoints_and_exits_130(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    journal = tmp_path / "state" / "runbook-console" / "mini--embedded.toml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "run", *MINI, "--yes"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    try:
        for line in proc.stdout:
            if "created backup" in line:
                break
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=5)  # the stop is honoured well within 2 s of pausing
        assert proc.returncode == 130
        assert "Resume with: runbook run" in out
        status = json.loads(runbook_cli("status", "--json", *MINI, env=env).stdout)
        assert status["state"] == "INTERRUPTED"  # nothing runs it now
        assert status["steps"][0]["status"] == "interrupted"
        assert status["steps"][0]["journal_status"] == "running"  # resumable
    finally:
        proc.kill()
        stop_world(record_path_for(journal))


def test_world_gone_is_said_plainly(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    journal = tmp_path / "state" / "runbook-console" / "mini--embedded.toml"
    try:
        assert runbook_cli("run", *MINI, "--until", "backup-tables", env=env).returncode == 0
        record = read_record(record_path_for(journal))
        os.kill(record.pid, signal.SIGKILL)
        proc = runbook_cli("run", *MINI, env=env)
        assert proc.returncode == 2
        assert "is gone" in proc.stderr and "--fresh" in proc.stderr
        from engine.state.journal import utcnow

        fresh_from = utcnow()
        fresh = runbook_cli("run", *MINI, "--fresh", "--until", "backup-tables", env=env)
        assert fresh.returncode == 0, fresh.stderr
        assert "previous run kept whole" in fresh.stdout
        kept = list(journal.parent.glob("mini--embedded.*.old"))
        assert len(kept) == 1  # the previous run moved aside whole, under one name
        assert {p.name for p in kept[0].iterdir()} >= {"mini--embedded.toml", "mini--embedded.log"}
        old_log = (kept[0] / "mini--embedded.log").read_text()
        new_log = (journal.parent / "mini--embedded.log").read_text()
        assert "backup-tables" in old_log
        # the new run's log holds the new run only (every line stamped after it began)
        assert new_log and all(line.split()[0] >= fresh_from for line in new_log.splitlines())
    finally:
        stop_world(record_path_for(journal))


def test_operator_name_without_user_variables_is_the_login(monkeypatch) -> None:
    import pwd

    from engine.session.journals import operator_name

    monkeypatch.delenv("USER", raising=False)
    monkeypatch.delenv("LOGNAME", raising=False)
    assert operator_name() == pwd.getpwuid(os.getuid()).pw_name
    assert operator_name("alice") == "alice"


def test_run_stopping_at_a_gate_gives_the_commands_that_answer_it(
    moto_endpoint: str, tmp_path: Path
) -> None:
    """Issue 20, item 15: with an item unticked, `decide --go` would be refused; the exit line
    gives the tick commands first, as `status` does."""
    from engine.plan.loader import load_runbook

    seed_endpoint(moto_endpoint, load_runbook(MINI_RUNBOOK).runbook)
    common = [*MINI, "--endpoint-url", moto_endpoint, "--journal", str(tmp_path / "j.toml")]
    proc = runbook_cli("run", *common, "--yes")
    assert proc.returncode == 3, proc.stderr
    said = proc.stdout.split("waiting at gate gate-phase2", 1)[1]
    assert "runbook tick gate-phase2 team-ready --by NAME" in said
    assert "then: runbook decide gate-phase2 --go --by NAME" in said
    assert said.index("runbook tick") < said.index("runbook decide")
