"""`runbook state push` / `pull` of a rehearsal on the embedded world: the run moves, and the
world it runs against goes with it (it outlives consoles; a new world would be another run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli.app import main
from engine.rehearsal.embedded import reconnect, record_path_for, stop_world
from engine.session.journals import state_dir
from engine.state.journal import JournalStore
from engine.state.s3_location import parse_s3_url
from tests.support.paths import MINI_RUNBOOK
from tests.support.rehearsal import TIME_SCALE

URL = "s3://rehearsal-state/runs/mini.toml"


def _run(journal: str) -> int:
    argv = ["run", "--runbook", str(MINI_RUNBOOK), "--journal", journal, "--yes"]
    return main([*argv, "--time-scale", TIME_SCALE])


def _move(*argv: str) -> int:
    return main(["state", *argv, "--runbook", str(MINI_RUNBOOK)])


def test_a_rehearsal_pushed_to_s3_and_pulled_back_stays_in_its_world(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = tmp_path / "laptop" / "run.toml"
    cache = parse_s3_url(URL).cache_path(state_dir())
    folder = tmp_path / "back"
    try:
        assert _run(str(local)) == 3  # at its first gate, in a world of its own
        world = JournalStore(local).load().run.target.identity
        assert _move("push", URL, "--journal", str(local)) == 0, capsys.readouterr().err
        assert _run(URL) == 3, capsys.readouterr().err  # driven from S3: the same place
        assert JournalStore(cache).load().run.target.identity == world
        assert reconnect(record_path_for(cache))[1].world_id == world
        state_bucket = reconnect(record_path_for(cache))[0].client("s3")
        assert state_bucket.head_object(Bucket="rehearsal-state", Key="runs/mini.toml")

        assert _move("pull", str(folder), "--journal", URL) == 0, capsys.readouterr().err
        pulled = folder / "mini.toml"
        assert _run(str(pulled)) == 3, capsys.readouterr().err
        assert reconnect(record_path_for(pulled))[1].world_id == world
    finally:
        for journal in (local, cache, folder / "mini.toml"):
            stop_world(record_path_for(journal))
