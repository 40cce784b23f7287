"""`runbook state push` / `state pull` and `--journal s3://...` through the CLI, in process,
against a moto server on loopback holding the target and the state bucket."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.aws.target import local_connection
from engine.cli.app import main
from engine.cli.journal_follow import follow_journal
from engine.plan.loader import load_runbook
from engine.rehearsal.seed import seed_world
from engine.session.workspace import Workspace, WorkspaceOptions
from engine.state.journal import JournalStore
from tests.support.paths import MINI_RUNBOOK
from tests.support.world import fresh_moto_server


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with fresh_moto_server() as url:
        seed_world(local_connection(url, "us-east-1"), load_runbook(MINI_RUNBOOK).runbook, "w-s3")
        yield url


@pytest.fixture
def bucket(endpoint: str) -> str:
    name = f"state-{uuid.uuid4().hex[:12]}"
    s3 = local_connection(endpoint, "us-east-1").client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def _run(endpoint: str, journal: str, *extra: str) -> int:
    return main([
        "run", "--runbook", str(MINI_RUNBOOK), "--endpoint-url", endpoint, "--journal", journal,
        "--yes", "--time-scale", "1000", *extra,
    ])  # fmt: skip


def _common(endpoint: str) -> list[str]:
    return ["--runbook", str(MINI_RUNBOOK), "--endpoint-url", endpoint]


def test_push_then_the_local_side_refuses_and_pull_then_s3_refuses(
    endpoint: str, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = tmp_path / "laptop" / "run.toml"
    assert _run(endpoint, str(local)) == 3  # waiting at its first gate
    before = JournalStore(local).load()
    url = f"s3://{bucket}/runs/mini.toml"

    assert main(["state", "push", url, "--journal", str(local), *_common(endpoint)]) == 0
    assert "refuses to drive" in capsys.readouterr().out
    assert not local.exists()  # kept aside whole, beside a mark saying where the run went
    assert _run(endpoint, str(local)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"moved to {url}" in err
    assert main(["state", "push", url, "--journal", str(local), *_common(endpoint)]) == 2

    assert main(["status", "--journal", url, *_common(endpoint)]) == 0
    assert _run(endpoint, url) == 3  # the same run, driven from S3: same place
    s3 = local_connection(endpoint, "us-east-1").client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert "runs/mini.log.d/00000000" in keys

    folder = tmp_path / "back"
    capsys.readouterr()
    assert main(["state", "pull", str(folder), "--journal", url, *_common(endpoint)]) == 0
    pulled = folder / "mini.toml"  # named as in the URL
    assert JournalStore(pulled).load().run.started_at == before.run.started_at
    assert _run(endpoint, url) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "moved to" in err and str(pulled) in err
    assert _run(endpoint, str(pulled)) == 3
    # the log came along both ways: the backups the laptop ran are in it
    assert "[backup-tables] done" in pulled.with_name("mini.log").read_text()


def test_push_never_overwrites_a_run_in_s3(
    endpoint: str, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"s3://{bucket}/runs/taken.toml"
    assert _run(endpoint, url) == 3
    local = tmp_path / "other.toml"
    assert _run(endpoint, str(local)) == 3
    capsys.readouterr()
    assert main(["state", "push", url, "--journal", str(local), *_common(endpoint)]) == 2
    assert "holds a run already" in capsys.readouterr().err
    assert local.exists() and not local.with_name("other.toml.moved").exists()
    assert _run(endpoint, str(local)) == 3  # still this machine's to drive


def test_a_second_home_resumes_the_same_run(
    endpoint: str, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    url = f"s3://{bucket}/runs/homes.toml"
    assert _run(endpoint, url) == 3
    started = capsys.readouterr()
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "second-home"))
    monkeypatch.chdir(tmp_path)
    assert main(["status", "--journal", url, *_common(endpoint)]) == 0
    status = capsys.readouterr().out
    assert "waiting at gate" in status and started.out
    assert _run(endpoint, url) == 3


def test_watch_follows_a_run_in_s3_from_afar(
    endpoint: str, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"s3://{bucket}/runs/watched.toml"
    assert _run(endpoint, url) == 3
    ws = Workspace(WorkspaceOptions(runbook=MINI_RUNBOOK, journal=url, endpoint_url=endpoint))
    lines: list[str] = []
    stop = threading.Event()

    def say(line: str) -> None:
        lines.append(line)
        if line.startswith("WAITING_GATE gate gate-phase2"):  # the driver goes on elsewhere
            decide = ["decide", "gate-phase2", "--go", "--by", "op", "--override", "test"]
            assert main([*decide, "--journal", url, *_common(endpoint)]) == 0
        elif not line.startswith("following"):
            stop.set()  # the change the decision made: enough

    assert follow_journal(ws, say, stop, poll=0.01) == 0
    assert lines == [
        f"following {url} (read-only; Ctrl-C stops following, not the run)",
        "WAITING_GATE gate gate-phase2 · 1/3 steps done",
        "WAITING_ACK step handover · 1/3 steps done",
    ]


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["status", "--journal", "s3://state/run.json"], "must end in .toml"),
        (["run", "--journal", "s3:/state/run.toml"], "s3://bucket/prefix/name.toml"),
        (["state", "push", "s3://Bad_Bucket/run.toml"], "not an S3 bucket name"),
    ],
)
def test_a_bad_s3_url_is_one_line_exit_2(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and said in err


def test_fresh_is_refused_for_a_run_in_s3(
    endpoint: str, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"s3://{bucket}/runs/fresh.toml"
    assert _run(endpoint, url) == 3
    capsys.readouterr()
    assert _run(endpoint, url, "--fresh") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "new --journal s3://" in err


def test_status_names_the_driver_of_a_run_in_s3_on_another_machine(
    endpoint: str, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"s3://{bucket}/runs/driven.toml"
    assert _run(endpoint, url) == 3
    s3 = local_connection(endpoint, "us-east-1").client("s3")
    holder = b'user = "bob"\nhost = "bastion-2"\npid = 7\nsince = "2026-12-06T10:00:00Z"\n'
    s3.put_object(Bucket=bucket, Key="runs/driven.toml.lock", Body=holder + b'operation = "run"\n')
    capsys.readouterr()
    assert main(["status", "--json", "--journal", url, *_common(endpoint)]) == 0
    assert json.loads(capsys.readouterr().out)["driver"] == "bob@bastion-2"
    assert _run(endpoint, url) == 4
    assert "bob@bastion-2 (pid 7)" in capsys.readouterr().err
