"""A run kept in S3 (`--journal s3://...`), end to end through `runbook` processes against a
moto server on loopback that holds both the target and the state bucket.

- A SIGKILL mid-migration, then every local file the run wrote deleted: the run resumes from a
  second home directory and another working directory with the same URL, and the target then
  equals an uninterrupted local run's (another account on the same server), item for item; the
  two journals agree step by step.
- Two drivers started at once on one S3 journal: exactly one runs, the other exits 4 naming the
  holder.
- A checkpoint written behind the driver's back stops it in one line, nothing overwritten.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from engine.aws import dynamo
from engine.aws.target import Connection, local_connection
from engine.plan.loader import default_runbook_path, load_runbook
from engine.rehearsal.seed import seed_world
from engine.state.journal import JournalStore, parse_journal
from tests.support.approvals import as_flags, manual_items
from tests.support.long_runs import long_run
from tests.support.paths import REPO
from tests.support.world import fresh_moto_server

CRASH, REFERENCE = "123456789012", "111111111111"
SCALE, PAGE_SIZE = 20, 5
BUCKET = "runbook-state"
TIME_SCALE = "1000000"


def _credentials(url: str, account: str) -> dict[str, str]:
    if account == CRASH:
        return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    sts = local_connection(url, "us-east-1").client("sts")
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/ref", RoleSessionName="ref")[
        "Credentials"
    ]
    return {
        "AWS_ACCESS_KEY_ID": c["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": c["SecretAccessKey"],
        "AWS_SESSION_TOKEN": c["SessionToken"],
    }


def _small_pages(folder: Path) -> Path:
    text, n = re.subn(
        r'(action = "migrate_entity"\nparams = \{ entity = "\w+"[^}]*?) *\}',
        lambda m: re.sub(r",? *page_size = \d+", "", m.group(1)) + f", page_size = {PAGE_SIZE} }}",
        default_runbook_path().read_text(),
    )
    assert n == 4
    path = folder / "runbook.toml"
    path.write_text(text)
    return path


class Operator:
    """`runbook` processes in one home and working directory, as one operator's machine."""

    def __init__(self, url: str, account: str, env: dict[str, str], home: Path, rb: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.env = {
            **os.environ, **env, "HOME": str(home), "XDG_STATE_HOME": str(home / "state"),
            "PYTHONPATH": str(REPO),
        }  # fmt: skip
        if "AWS_SESSION_TOKEN" not in env:
            self.env.pop("AWS_SESSION_TOKEN", None)
        self.common = ["--runbook", str(rb), "--endpoint-url", url]

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "engine.cli", *args, *self.common]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args), cwd=self.home, env=self.env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args), cwd=self.home, env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
        )  # fmt: skip

    def answer(self, journal: str) -> None:
        """What an operator does at the gate or manual step the run waits at."""
        status = self.cli("status", "--json", "--journal", journal)
        assert status.returncode == 0, status.stderr
        waiting = json.loads(status.stdout)["waiting"]
        rb = load_runbook(Path(self.common[1])).runbook
        if waiting["kind"] == "step":
            acked = self.cli("ack", waiting["id"], "--by", "op", "--journal", journal)
            assert acked.returncode == 0, acked.stderr
            return
        gate = rb.gate(waiting["id"])
        for i, item in enumerate(manual_items(gate)):
            self.cli("tick", gate.id, item.id, "--by", "op", *as_flags(i), "--journal", journal)
        if self.cli("decide", gate.id, "--go", "--by", "op", "--journal", journal).returncode:
            done = self.cli(
                "decide", gate.id, "--go", "--by", "op", "--override", "x", "--journal", journal
            )
            assert done.returncode == 0, done.stderr

    def drive(self, journal: str) -> None:
        for _ in range(60):
            proc = self.cli("run", "--yes", "--time-scale", TIME_SCALE, "--journal", journal)
            if proc.returncode == 0:
                return
            assert proc.returncode == 3, proc.stderr
            self.answer(journal)
        pytest.fail("the run did not finish")


World = tuple[str, dict[str, dict[str, str]], Path]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    rb_path = _small_pages(tmp_path_factory.mktemp("runbook"))
    rb = load_runbook(rb_path).runbook
    with fresh_moto_server() as url:
        env: dict[str, dict[str, str]] = {}
        for account in (CRASH, REFERENCE):
            env[account] = _credentials(url, account)
            session = boto3.Session(
                region_name="us-east-1",
                aws_access_key_id=env[account]["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=env[account]["AWS_SECRET_ACCESS_KEY"],
                aws_session_token=env[account].get("AWS_SESSION_TOKEN"),
            )
            seed_world(Connection(session, "us-east-1", url), rb, f"world-{account}", scale=SCALE)
        s3 = local_connection(url, "us-east-1").client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield url, env, rb_path


def _items(url: str, env: dict[str, str], ts: str) -> dict[str, list[str]]:
    ddb = boto3.client(
        "dynamodb", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env.get("AWS_SESSION_TOKEN"),
    )  # fmt: skip
    return {
        name: sorted(
            json.dumps(item, sort_keys=True, default=str).replace(ts, "<run-ts>")
            for page, _ in dynamo.scan_pages(ddb, name)
            for item in page
        )
        for name in ddb.list_tables()["TableNames"]
    }


def _kill_mid_migration(proc: subprocess.Popen[str]) -> str | None:
    """Follow the run's output; SIGKILL it at a migration's first progress line short of its
    total (the step's id), or None when the run ended before one."""
    assert proc.stdout is not None
    step = ""
    for line in proc.stdout:
        text = line.strip()
        if text.startswith("==> "):
            step = text.split()[2].rstrip(":")
        if step.startswith("migrate-") and "items/s" in text and "/" in text:
            done, _, total = text.partition(":")[2].split()[0].partition("/")
            if done.replace(",", "") not in ("0", total.replace(",", "")):
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return step
    proc.wait(timeout=600)
    return None


def _s3_journal(url: str, key: str) -> Any:
    s3 = local_connection(url, "us-east-1").client("s3")
    return parse_journal(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read(), key)


@long_run
@pytest.mark.slow
def test_sigkill_mid_migration_then_resume_from_a_second_home_equals_an_uninterrupted_run(
    world: World, tmp_path: Path
) -> None:
    url, env, rb_path = world
    reference = Operator(url, REFERENCE, env[REFERENCE], tmp_path / "ref", rb_path)
    local_journal = str(tmp_path / "ref" / "reference.toml")
    reference.drive(local_journal)

    journal = f"s3://{BUCKET}/runs/acme/migration.toml"
    first = Operator(url, CRASH, env[CRASH], tmp_path / "laptop", rb_path)
    # the gates before the migrations answered in the first home, then a kill mid-migration
    for _ in range(20):
        proc = first.popen("run", "--yes", "--time-scale", TIME_SCALE, "--journal", journal)
        if _kill_mid_migration(proc):
            break
        assert proc.returncode == 3, proc.stderr.read() if proc.stderr else ""
        first.answer(journal)
    else:
        pytest.fail("never reached a migration")
    shutil.rmtree(first.home)  # the machine is gone, with every local file the run wrote

    second = Operator(url, CRASH, env[CRASH], tmp_path / "bastion", rb_path)
    status = second.cli("status", "--journal", journal)
    assert status.returncode == 0 and "migrate-" in status.stdout, status.stderr
    # the dead driver's lock is still in S3: taking it over is explicit, and journaled
    refused = second.cli("run", "--yes", "--time-scale", TIME_SCALE, "--journal", journal)
    assert refused.returncode == 4 and "--take-over" in refused.stderr, refused.stderr
    taken = second.cli(
        "run", "--yes", "--time-scale", TIME_SCALE, "--journal", journal, "--take-over"
    )
    assert taken.returncode in (0, 3), taken.stderr
    assert "took over the lock of" in taken.stdout and "held for" not in taken.stderr
    second.drive(journal)

    ref_journal = JournalStore(Path(local_journal)).load()
    s3_journal = _s3_journal(url, "runs/acme/migration.toml")
    assert any("took over the lock of" in entry.what for entry in s3_journal.audit)
    assert {k: v.status for k, v in s3_journal.steps.items()} == {
        k: v.status for k, v in ref_journal.steps.items()
    }
    assert {k: v.decision for k, v in s3_journal.gates.items()} == {
        k: v.decision for k, v in ref_journal.gates.items()
    }
    expected = _items(url, env[REFERENCE], ref_journal.run.migration_ts)
    got = _items(url, env[CRASH], s3_journal.run.migration_ts)
    assert sorted(got) == sorted(expected)
    assert sum(len(v) for v in expected.values()) >= 200
    for table in expected:
        assert got[table] == expected[table], table


def test_two_drivers_at_once_one_runs_the_other_exits_4_naming_the_holder(
    world: World, tmp_path: Path
) -> None:
    url, env, rb_path = world
    a = Operator(url, CRASH, env[CRASH], tmp_path / "a", rb_path)
    b = Operator(url, CRASH, env[CRASH], tmp_path / "b", rb_path)
    journal = f"s3://{BUCKET}/runs/two/migration.toml"
    assert a.cli("run", "--yes", "--time-scale", TIME_SCALE, "--journal", journal).returncode == 3
    a.answer(journal)  # GO on the first gate: the next run goes on to steps
    first = a.popen("run", "--yes", "--time-scale", TIME_SCALE, "--journal", journal)
    assert first.stdout is not None
    for line in first.stdout:  # the first driver holds the lock once it is under way
        if line.startswith("==> "):
            break
    else:
        pytest.fail("the first driver never started a step")
    # frozen while holding the lock (the S3 lock has no lease), so the second start overlaps it
    os.kill(first.pid, signal.SIGSTOP)
    try:
        refused = b.cli("run", "--yes", "--time-scale", TIME_SCALE, "--journal", journal)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    _, err = first.communicate(timeout=600)
    assert first.returncode == 3, err  # the first ran on to its gate, untouched
    assert refused.returncode == 4, refused.stderr
    assert refused.stderr.count("\n") == 1 and "journal is locked by" in refused.stderr
    assert "running 'run'" in refused.stderr and f"pid {first.pid}" in refused.stderr


def test_a_detached_driver_on_one_machine_refuses_a_driver_on_another(
    world: World, tmp_path: Path
) -> None:
    url, env, rb_path = world
    journal = f"s3://{BUCKET}/d/m.toml"
    # short homes: the control socket lives beside this machine's copy of the journal
    short = Path(tempfile.mkdtemp(prefix="s3h", dir="/tmp"))
    a = Operator(url, CRASH, env[CRASH], short / "a", rb_path)
    b = Operator(url, CRASH, env[CRASH], short / "b", rb_path)
    started = a.cli("run", "--detach", "--yes", "--time-scale", TIME_SCALE, "--journal", journal)
    assert started.returncode == 0, started.stderr
    try:
        refused = b.cli("run", "--yes", "--time-scale", TIME_SCALE, "--journal", journal)
        assert refused.returncode == 4, refused.stderr
        assert refused.stderr.count("\n") == 1 and "journal is locked by" in refused.stderr
        assert "--take-over" in refused.stderr
    finally:
        stopped = a.cli("stop", "--journal", journal)
        shutil.rmtree(short, ignore_errors=True)
    assert stopped.returncode in (0, 130), stopped.stderr


def test_a_checkpoint_written_behind_the_drivers_back_stops_it_in_one_line(
    world: World, tmp_path: Path
) -> None:
    url, env, rb_path = world
    key = "runs/behind/migration.toml"
    journal = f"s3://{BUCKET}/{key}"
    op = Operator(url, CRASH, env[CRASH], tmp_path / "op", rb_path)
    assert op.cli("run", "--yes", "--time-scale", TIME_SCALE, "--journal", journal).returncode == 3
    op.answer(journal)  # GO on the first gate: the next run goes on to the backups
    s3 = local_connection(url, "us-east-1").client("s3")
    proc = op.popen("run", "--yes", "--time-scale", TIME_SCALE, "--journal", journal)
    assert proc.stdout is not None
    for line in proc.stdout:  # the driver is under way: write the journal behind its back
        if line.startswith("==> "):
            body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            behind = body.replace(b'operator = "', b'operator = "x', 1)
            s3.put_object(Bucket=BUCKET, Key=key, Body=behind)
            break
    proc.wait(timeout=600)
    err = proc.stderr.read() if proc.stderr else ""
    assert proc.returncode == 2, err
    assert err.count("\n") == 1 and "changed by another writer" in err and "412" in err
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == behind
