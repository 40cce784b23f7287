"""A full rehearsal on the embedded world with `--journal s3://...`: the world holds the state
bucket (versioning on), the three days complete, and the journal kept in S3 has the same
content as a local rehearsal's, run for run (times, ids and the world's name aside)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from engine.cli.app import main
from engine.plan.loader import default_runbook_path, load_runbook
from engine.rehearsal.embedded import reconnect, record_path_for, stop_world
from engine.session.journals import state_dir
from engine.state.journal import Journal, JournalStore
from engine.state.s3_location import parse_s3_url
from tests.support.approvals import as_flags, manual_items
from tests.support.long_runs import long_run
from tests.support.rehearsal import TIME_SCALE, status

URL = "s3://rehearsal-state/runs/acme/rehearsal.toml"


def _rehearse(common: list[str], capsys: Any) -> None:
    rb = load_runbook(default_runbook_path()).runbook
    for _ in range(60):
        code = main(["run", *common, "--yes", "--time-scale", TIME_SCALE])
        if code == 0:
            return
        assert code == 3, capsys.readouterr()
        waiting = status(common, capsys)["waiting"]
        if waiting["kind"] == "step":
            assert main(["ack", waiting["id"], "--by", "rehearsal", *common]) == 0
            continue
        gate = rb.gate(waiting["id"])
        for i, item in enumerate(manual_items(gate)):
            tick = ["tick", gate.id, item.id, "--by", "rehearsal", *as_flags(i), *common]
            assert main(tick) == 0
        assert main(["decide", gate.id, "--go", "--by", "rehearsal", *common]) == 0
    pytest.fail("the rehearsal did not finish")


_VARYING = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)?|world-[0-9a-f]+|"
    r"arn:aws:dynamodb:[^\"' ]+/backup/[0-9A-Za-z-]+|\d+(\.\d+)?(e[-+]?\d+)? ?(s|ms|items/s)\b"
)


def _shape(journal: Journal) -> dict[str, Any]:
    """What a run did, step by step: statuses, attempts, summaries' keys, gate decisions."""
    return {
        "steps": {k: (v.status, sorted(v.summary)) for k, v in journal.steps.items()},
        "gates": {k: (v.decision, sorted(v.ticks)) for k, v in journal.gates.items()},
        "audit": [_VARYING.sub("~", a.what) for a in journal.audit],
        "mapping": journal.mapping.get("used_by"),
    }


@long_run
@pytest.mark.slow
def test_a_rehearsal_kept_in_s3_completes_the_three_days_as_a_local_one(
    tmp_path: Path, capsys: Any
) -> None:
    local = tmp_path / "local.toml"
    cache = parse_s3_url(URL).cache_path(state_dir())
    try:
        _rehearse(["--journal", str(local)], capsys)
        stop_world(record_path_for(local))
        _rehearse(["--journal", URL], capsys)
        record = record_path_for(cache)
        s3 = _world_s3(record)
        versioning = s3.get_bucket_versioning(Bucket="rehearsal-state")["Status"]
        body = s3.get_object(Bucket="rehearsal-state", Key="runs/acme/rehearsal.toml")["Body"]
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="rehearsal-state")["Contents"]]
    finally:
        stop_world(record_path_for(local))
        stop_world(record_path_for(cache))
    assert versioning == "Enabled"
    assert body.read() == cache.read_bytes()  # the copy here is S3's
    assert any(k.startswith("runs/acme/rehearsal.artifacts/") for k in keys), keys
    assert any(k.startswith("runs/acme/rehearsal.log.d/") for k in keys), keys
    in_s3, on_disk = JournalStore(cache).load(), JournalStore(local).load()
    assert {s.status for s in in_s3.steps.values()} == {"done"}
    assert _shape(in_s3) == _shape(on_disk)


def _world_s3(record: Path) -> Any:
    conn, _ = reconnect(record)
    return conn.client("s3")
