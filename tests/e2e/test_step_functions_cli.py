"""The step-functions backend rehearsed for real (issue 23): `runbook run` on the embedded world
with tests/data/step-functions-runbook.toml (its expenses copied by an export and a Distributed
Map in the embedded moto). A SIGKILL of the console mid-execution changes nothing in AWS: the
next run attaches to the same execution, exactly one is ever started, and validate-migration
passes. A SIGTERM (the console's stop) stops the execution; the next run finishes it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine.aws.target import local_connection
from engine.rehearsal.embedded import read_record, record_path_for, stop_world
from tests.support.long_runs import long_run
from tests.support.paths import REPO

RUNBOOK = REPO / "tests" / "data" / "step-functions-runbook.toml"
MACHINE = "runbook-sfn-rehearsal-migrate-expenses"
COPIED = re.compile(r"multi-table-expenses: [1-9][0-9]*/40 ")


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def run_until_items_are_copied(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """`runbook run` until its progress shows items copied by the execution (moto 5.2.6 fails
    a StopExecution that comes before the execution's worker has begun)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    seen = []
    started = False
    for line in proc.stdout:
        seen.append(line)
        if started and COPIED.search(line):
            return proc
        started = started or "expenses: execution arn:" in line
    proc.wait(timeout=10)
    raise AssertionError("the execution never started:\n" + "".join(seen))


def closed_executions(journal: Path) -> list[dict]:
    """The machine's executions once none is RUNNING (a stopped one is ABORTED soon after)."""
    deadline = time.monotonic() + 30
    while True:
        runs = machine_executions(journal)
        if all(r["status"] != "RUNNING" for r in runs) or time.monotonic() > deadline:
            return runs
        threading.Event().wait(0.2)


def machine_executions(journal: Path) -> list[dict]:
    record = read_record(record_path_for(journal))
    assert record is not None
    conn = local_connection(record.url, "us-east-1")
    sfn = conn.client("stepfunctions")
    machines = sfn.list_state_machines()["stateMachines"]
    arn = next(m["stateMachineArn"] for m in machines if m["name"] == MACHINE)
    return list(sfn.list_executions(stateMachineArn=arn)["executions"])


def bridge_functions(journal: Path) -> list[str]:
    """The bridge functions the run created in the embedded world (its moto runs them)."""
    record = read_record(record_path_for(journal))
    assert record is not None
    lam = local_connection(record.url, "us-east-1").client("lambda")
    names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    return [n for n in names if n.startswith("runbook-bridge-")]


@pytest.mark.slow
@pytest.mark.parametrize(
    "sig",
    # the stop also runs in CI in process (test_step_functions_resume.py): CI's 20 minutes
    [signal.SIGKILL, pytest.param(signal.SIGTERM, marks=long_run)],
    ids=["kill", "stop"],
)
def test_the_console_dies_or_stops_mid_execution_and_the_next_run_finishes_it(
    tmp_path: Path, sig: signal.Signals
) -> None:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    journal = tmp_path / "journal.toml"
    args = ["run", "--runbook", str(RUNBOOK), "--journal", str(journal), "--yes"]
    proc = run_until_items_are_copied(args, env)
    try:
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=30)
        if sig == signal.SIGTERM:
            assert proc.returncode == 130, out
            assert closed_executions(journal)[0]["status"] == "ABORTED"
        else:
            assert machine_executions(journal)[0]["status"] in ("RUNNING", "SUCCEEDED")

        second = cli(*args, env=env)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "validation passed" in second.stdout
        runs = machine_executions(journal)
        if sig == signal.SIGKILL:
            assert "attached to execution" in second.stdout
            assert len(runs) == 1  # exactly one was started
        else:  # moto cannot redrive: the next attempt, said so
            assert "attempt 2 starts" in second.stdout
            assert sorted(r["status"] for r in runs) == ["ABORTED", "SUCCEEDED"]
        assert all(r["status"] != "RUNNING" for r in runs)
        report = cli("report", "--runbook", str(RUNBOOK), "--journal", str(journal), env=env)
        assert "migrate-expenses step-functions" in report.stdout
        # each data file was converted in the state machine, as on a real account
        assert len(bridge_functions(journal)) == 1
        assert "bridge function arn:" in second.stdout or sig == signal.SIGKILL
    finally:
        proc.kill()
        stop_world(record_path_for(journal))
