"""A step's summary stays exact after a kill: `runbook run` is SIGKILLed right after a
DeleteFunction reached the target and before the step checkpointed it (where `code_missing`
used to lose the function), the run resumes, and the summary's `code_missing` names exactly
the functions whose archive says their code package was not fetched."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from engine.aws.target import local_connection
from engine.cli.app import main
from engine.plan.loader import load_runbook
from engine.rehearsal.seed import seed_world
from engine.state.journal import JournalStore
from tests.support.paths import CONSOLE_SAFETY_RUNBOOK
from tests.support.world import fresh_moto_server

RUNBOOK = CONSOLE_SAFETY_RUNBOOK
TIME_SCALE = "1000000"

# `runbook` with a botocore hook that SIGKILLs the process once DeleteFunction has answered:
# the function is gone from the target, the step has not checkpointed it yet
KILL_AFTER_DELETE = """
import os, signal, sys
from engine.aws import target
original = target.Connection.client
hooked = set()

def client(self, service):
    made = original(self, service)
    if service == "lambda" and id(made) not in hooked:
        hooked.add(id(made))
        made.meta.events.register(
            "after-call.lambda.DeleteFunction", lambda **_: os.kill(os.getpid(), signal.SIGKILL)
        )
    return made

target.Connection.client = client
from engine.cli.app import main
sys.exit(main(sys.argv[1:]))
"""


def test_code_missing_is_exact_after_a_kill_between_delete_and_checkpoint(
    tmp_path: Path, capsys
) -> None:
    journal_path = tmp_path / "j.toml"
    with fresh_moto_server() as url:
        rb = load_runbook(RUNBOOK).runbook
        conn = local_connection(url, "us-east-1")
        seed_world(conn, rb, "world-summary")
        common = ["--runbook", str(RUNBOOK), "--endpoint-url", url, "--journal", str(journal_path)]
        run = ["run", "--yes", "--time-scale", TIME_SCALE, *common]
        assert main(run) == 3  # waits at the manual step
        assert main(["ack", "team-check", "--by", "crash", *common]) == 0
        assert main(run) == 3  # waits at the gate
        assert main(["tick", "gate-phase2", "approved", "--by", "crash", *common]) == 0
        assert main(["decide", "gate-phase2", "--go", "--by", "crash", *common]) == 0
        capsys.readouterr()

        killed = subprocess.run(
            [sys.executable, "-c", KILL_AFTER_DELETE, *run],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
        lam = conn.client("lambda")
        deprecated = [f.name for f in rb.inventory.functions if f.deprecate]
        assert deprecated and not any(
            f["FunctionName"] in deprecated for f in lam.list_functions()["Functions"]
        )  # the delete reached the target
        at_kill = JournalStore(journal_path).load().step("delete-functions")
        assert at_kill.status == "running" and not at_kill.cursors.get("deleted")  # the window

        assert main(run) == 0  # resumed to the end
        capsys.readouterr()
    state = JournalStore(journal_path).load().step("delete-functions")
    assert state.status == "done"
    folder = journal_path.parent / "j.artifacts" / state.cursors["archive_dir"]
    truth = sorted(
        fn for fn in deprecated
        if not json.loads((folder / f"{fn}.json").read_text())["code"]["retrieved"]
    )  # fmt: skip
    assert truth == deprecated  # moto's code URL is not reachable: every package is missing
    assert sorted(state.summary["code_missing"]) == truth
    assert sorted(state.summary["deleted"]) == sorted(deprecated)
