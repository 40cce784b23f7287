"""`runbook tick/decide` with a gate that needs two approvers (issue 24), through the CLI
against a moto endpoint: one approver is refused in one line; `--as` offers the rehearsal's
second identity; `status` and `report` show the names and the identities verified."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from engine.cli.app import main
from engine.plan.loader import load_runbook
from engine.state.journal import JournalStore
from tests.support.paths import MINI_RUNBOOK
from tests.support.world import seed_endpoint

ME = pwd.getpwuid(os.getuid()).pw_name
ITEMS = """  { id = "team-ready", text = "Team ready", kind = "manual" },
  { id = "qa-ready", text = "QA ready", kind = "manual", approvers = ["os:qa-*"] },
"""


def test_two_approvers_through_the_cli(moto_endpoint: str, tmp_path: Path, capsys) -> None:
    text = MINI_RUNBOOK.read_text()
    text = text.replace(
        'before_phase = "phase2"\n', 'before_phase = "phase2"\nmin_approvals = 2\n', 1
    ).replace('  { id = "team-ready", text = "Team ready", kind = "manual" },\n', ITEMS, 1)
    rb = tmp_path / "rb.toml"
    rb.write_text(text)
    seed_endpoint(moto_endpoint, load_runbook(rb).runbook)
    journal = tmp_path / "j.toml"
    common = ["--runbook", str(rb), "--endpoint-url", moto_endpoint, "--journal", str(journal)]
    assert main(["run", *common, "--yes", "--time-scale", "100"]) == 3
    assert main(["tick", "gate-phase2", "team-ready", "--by", "al", *common]) == 0

    capsys.readouterr()
    before = journal.read_bytes()
    assert main(["tick", "gate-phase2", "qa-ready", "--by", "al", *common]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "may be ticked only by os:qa-*" in err
    assert f"you are os:{ME}" in err and journal.read_bytes() == before

    with pytest.raises(SystemExit) as bad:  # argparse: one line, exit 2
        main(["tick", "gate-phase2", "qa-ready", "--by", "q", "--as", "qa bad", *common])
    assert bad.value.code == 2 and "argument --as" in capsys.readouterr().err
    assert main(["tick", "gate-phase2", "qa-ready", "--by", "q", "--as", "qa-lead", *common]) == 0
    assert main(["tick", "gate-phase2", "team-ready", "--by", "al", *common]) == 0
    capsys.readouterr()
    assert main(["status", *common]) == 0
    status = capsys.readouterr().out
    assert "approvals: needs 2 distinct approvers; verified so far:" in status
    assert f"ticked:   qa-ready by q [os:{ME}, arn:aws:sts::123456789012:user/moto, as qa-lead" in (
        status
    )
    assert main(["decide", "gate-phase2", "--go", "--by", "al", *common]) == 0
    ticks = JournalStore(journal).load().gates["gate-phase2"].ticks
    assert {t.identity.principal for t in ticks.values() if t.identity} == {
        f"os:{ME}",
        "os:qa-lead",
    }
    capsys.readouterr()
    assert main(["report", *common]) == 0
    report = capsys.readouterr().out
    assert "QA ready: ticked by q at " in report and "distinct verified approvers:" in report
