"""`runbook run` on the embedded world with `[notify]` (issue 24): the world holds the topic
and its inbox queue; each `runbook` process that drives tells the topic what it met, once,
and lets go of the journal only after (the workspace closes its notifier)."""

from __future__ import annotations

import json
from pathlib import Path

from engine.aws.target import local_connection
from engine.cli.app import main
from engine.rehearsal.embedded import read_record, record_path_for, stop_world
from engine.rehearsal.seed import inbox_name
from engine.state.journal import JournalStore
from tests.support.notify import drain, event_ids
from tests.support.paths import MINI_RUNBOOK

TOPIC = "arn:aws:sns:us-east-1:123456789012:mini-war-room"


def test_runs_on_the_embedded_world_tell_its_topic(tmp_path: Path, capsys) -> None:
    rb = tmp_path / "rb.toml"
    rb.write_text(MINI_RUNBOOK.read_text() + f'\n[notify]\nsns_topic_arn = "{TOPIC}"\n')
    journal = tmp_path / "j.toml"
    common = ["--runbook", str(rb), "--journal", str(journal)]
    try:
        assert main(["run", *common, "--yes", "--time-scale", "100"]) == 3  # at the gate
        assert main(["run", *common, "--yes"]) == 3  # the same wait again: not told again
        assert main(["tick", "gate-phase2", "team-ready", "--by", "al", *common]) == 0
        assert main(["decide", "gate-phase2", "--go", "--by", "al", *common]) == 0
        assert main(["run", *common, "--yes"]) == 3  # the manual step
        assert main(["ack", "handover", "--by", "al", *common]) == 0
        assert main(["run", *common, "--yes"]) == 0
        record = read_record(record_path_for(journal))
        assert record is not None
        sqs = local_connection(record.url, "us-east-1").client("sqs")
        bodies = drain(sqs, sqs.get_queue_url(QueueName=inbox_name(TOPIC))["QueueUrl"])
    finally:
        stop_world(record_path_for(journal))
    assert event_ids(bodies) == [
        "wait-gate-gate-phase2-r0-a0",
        "wait-step-handover-r0-a0",
        "finished",
    ]
    assert json.loads(bodies[1].split("\n", 1)[1])["commands"] == ["runbook ack handover --by NAME"]
    saved = JournalStore(journal).load().notifications
    assert (saved.sent, saved.failed) == (3, 0)
    capsys.readouterr()
    assert main(["status", *common]) == 0
    assert "notifications failing" not in capsys.readouterr().out
