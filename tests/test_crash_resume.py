"""Crash and resume: SIGKILL at 50+ points across every kind of step, on 5,000 varied items
(RUNBOOK_CRASH_FULL=1; CI runs a fast version with one kill per kind of step).

One moto server serves two worlds seeded alike, in two accounts: one runs the whole runbook
once without interruption (the reference), the other runs it again with `runbook run` killed
with SIGKILL at deterministic points: at the start of every step and rollback step, and at
each quarter of every table's progress. A kill point is used once, so the run always moves on.
After every kill the journal parses; at the end every DynamoDB item of the crashed world equals
the reference item for item (the run's own timestamp aside), and the items written again after
the kills stay within one checkpoint interval's worth of writes per kill.

It tests behaviour only (what the target holds, how many writes reached it), so it does not
depend on how an action writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import dynamo
from engine.cli import main
from engine.context import CHECKPOINT_EVERY_SECONDS
from engine.journal import JournalStore
from engine.loader import default_runbook_path, load_runbook
from engine.seed import seed_world
from engine.target import local_connection
from tests.conftest import fresh_moto_server

# The plan's legacy entity tables hold 10 items; x 500 = 5,000 with RUNBOOK_CRASH_FULL=1 (every
# kill point, 50+). CI runs the fast version: x 20 = 200 legacy items, one kill per kind of step
# (plus one mid-migration, one in the rollback), on the same code path.
FULL = os.environ.get("RUNBOOK_CRASH_FULL") == "1"
SCALE = 500 if FULL else 20
MIN_KILLS = 50 if FULL else 12
CRASH, REFERENCE = "123456789012", "111111111111"  # two moto accounts, one server
TIME_SCALE = "1000000"
ROLLBACK_AT = ("gate", "gate-phase5")  # roll back phase 4 (reads) while waiting here, once


class WriteCounter:
    """Items written per (account, table), counted inside moto (whatever API wrote them)."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from moto.dynamodb.models.table import Table

        original = Table.put_item
        counter = self

        def put_item(table: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(table, *args, **kwargs)
            with counter.lock:
                counter.counts[(table.account_id, table.name)] += 1
            return result

        monkeypatch.setattr(Table, "put_item", put_item)


def _credentials(url: str, account: str) -> dict[str, str]:
    """Environment credentials for `account` (moto ties assumed-role keys to its account)."""
    if account == CRASH:
        return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    sts = local_connection(url, "us-east-1").client("sts")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/ref", RoleSessionName="ref")
    c = creds["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": c["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": c["SecretAccessKey"],
        "AWS_SESSION_TOKEN": c["SessionToken"],
    }


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[str, WriteCounter, dict[str, dict[str, str]]]]:
    import boto3

    from engine.target import Connection

    with fresh_moto_server() as url:
        rb = load_runbook(default_runbook_path()).runbook
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
        patch = pytest.MonkeyPatch()
        counter = WriteCounter()
        counter.install(patch)
        yield url, counter, env
        patch.undo()


def _common(url: str, journal: Path) -> list[str]:
    return ["--endpoint-url", url, "--journal", str(journal)]


class Killer:
    """Runs `runbook run|rollback` in a child and SIGKILLs it at the first unused kill point
    its output reaches: a step's start, or a table's progress passing a quarter."""

    def __init__(self, env: dict[str, str], every_point: bool) -> None:
        self.used: list[str] = []
        self.env = {**os.environ, **env}
        self.every_point = every_point
        self.kinds: set[str] = set()
        self.rb = load_runbook(default_runbook_path()).runbook

    def wanted(self, label: str) -> bool:
        """Fast version: the first kill point of each kind of step (and of the rollback)."""
        if label in self.used:
            return False
        if self.every_point:
            return True
        what, step = label.split(":")[:2]
        kind = "rollback" if "#" in step else str(self.rb.step(step).action)
        key = f"{what}:{kind}"
        if what == "log" or key in self.kinds:
            return False
        self.kinds.add(key)
        return True

    def point(self, line: str, step: str | None) -> str | None:
        text = line.strip()
        if text.startswith("==> "):
            return f"start:{text.split()[2].rstrip(':')}"
        if step and text.startswith(("INFO", "WARNING")) and f"[{step}]" in text:
            # what a step logs as it goes (a table backed up, a flag set, a function deleted):
            # the first two lines of each step, each once
            seen = sum(1 for u in self.used if u.startswith(f"log:{step}:"))
            return f"log:{step}:{text}" if seen < 2 else None
        if step and ("items/s" in text or text.endswith("starting")) and "/" in text:
            # the first progress line of each table of a step (printed as soon as it comes,
            # "starting" before a rate exists; a small table may print no other line before its
            # last): a kill mid-step, with writes in flight and before the last
            table, _, rest = text.partition(":")
            done, _, total = rest.split()[0].partition("/")
            if done.replace(",", "") != total.replace(",", ""):
                return f"progress:{step}:{table}"
        return None

    def run(self, argv: list[str], journal: Path) -> int | None:
        """The child's exit code, or None when it was killed."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", *argv],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, bufsize=1, env=self.env,
        )  # fmt: skip
        assert proc.stdout is not None
        step: str | None = None
        for line in proc.stdout:
            if line.startswith("==> "):
                step = line.split()[2].rstrip(":")
            label = self.point(line, step)
            if label and self.wanted(label):
                self.used.append(label)
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                JournalStore(journal).load()  # the journal parses after every kill
                return None
        return proc.wait()


def _answer(common: list[str], rb: Any, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """Answer the gate or manual step the run waits at, as an operator would (in-process)."""
    capsys.readouterr()
    assert main(["status", "--json", *common]) == 0
    waiting = json.loads(capsys.readouterr().out)["waiting"]
    if waiting["kind"] == "step":
        assert main(["ack", waiting["id"], "--by", "crash", *common]) == 0
        return waiting
    gate = rb.gate(waiting["id"])
    for item in gate.items:
        if item.kind == "manual":
            assert main(["tick", gate.id, item.id, "--by", "crash", *common]) == 0
    if main(["decide", gate.id, "--go", "--by", "crash", *common]) != 0:
        assert main(["decide", gate.id, "--go", "--by", "crash", "--override", "x", *common]) == 0
    return waiting


def drive(
    url: str, journal: Path, capsys: pytest.CaptureFixture[str], killer: Killer | None
) -> None:
    rb = load_runbook(default_runbook_path()).runbook
    common = _common(url, journal)
    rolled_back = False
    for _ in range(400):
        argv = ["run", "--yes", "--time-scale", TIME_SCALE, *common]
        if killer is None:
            code: int | None = main(argv)
        else:
            code = killer.run(argv, journal)
        if code is None:
            continue  # killed: run again from the checkpoint
        if code == 0:
            return
        assert code == 3, code
        capsys.readouterr()
        main(["status", "--json", *common])
        waiting = json.loads(capsys.readouterr().out)["waiting"]
        if not rolled_back and (waiting["kind"], waiting["id"]) == ROLLBACK_AT:
            argv = ["rollback", "phase4", "--yes", "--by", "crash", *common]
            while True:
                code = main(argv) if killer is None else killer.run(argv, journal)
                if code is not None:
                    assert code == 0, code
                    break
            rolled_back = True
            continue
        _answer(common, rb, capsys)
    pytest.fail("the run did not finish")


def _items(url: str, env: dict[str, str], ts: str) -> dict[str, list[str]]:
    """Every DynamoDB table -> its items, canonical and sorted, the run's timestamp masked."""
    import boto3

    ddb = boto3.client(
        "dynamodb", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env.get("AWS_SESSION_TOKEN"),
    )  # fmt: skip
    out: dict[str, list[str]] = {}
    for name in ddb.list_tables()["TableNames"]:
        rows = [
            json.dumps(item, sort_keys=True, default=str).replace(ts, "<run-ts>")
            for page, _ in dynamo.scan_pages(ddb, name)
            for item in page
        ]
        out[name] = sorted(rows)
    return out


@pytest.mark.slow
def test_sigkill_anywhere_then_resume_equals_an_uninterrupted_run(
    world: tuple[str, WriteCounter, dict[str, dict[str, str]]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, counter, env = world
    reference_journal = tmp_path / "reference.toml"
    crash_journal = tmp_path / "crash.toml"

    with monkeypatch.context() as m:  # the reference runs in-process, in its own account
        for key, value in env[REFERENCE].items():
            m.setenv(key, value)
        started = time.monotonic()
        drive(url, reference_journal, capsys, killer=None)
        reference_seconds = time.monotonic() - started
    killer = Killer(env[CRASH], every_point=FULL)
    for key, value in env[CRASH].items():
        monkeypatch.setenv(key, value)
    drive(url, crash_journal, capsys, killer=killer)

    # >= 50 kill points, across every kind of step
    kills = killer.used
    crash_seconds = time.monotonic() - started - reference_seconds
    print(f"reference {reference_seconds:.0f} s, crashed run {crash_seconds:.0f} s")
    assert len(kills) >= MIN_KILLS, kills
    killed_steps = {k.split(":")[1] for k in kills}
    rb = load_runbook(default_runbook_path()).runbook
    kinds = {rb.step(s).action for s in killed_steps if "#" not in s}
    assert {
        "backup_tables", "company_mapping", "migrate_entity", "validate_migration", "set_flags",
        "watch_window", "shift_reads", "delete_tables",
    } <= kinds, kinds  # fmt: skip
    assert any("#" in s for s in killed_steps), "no kill inside the rollback"
    assert any(k.startswith("progress:migrate-") for k in kills), "no kill mid-migration"

    # the crashed world equals the reference, item for item
    ts = {
        account: JournalStore(path).load().run.migration_ts
        for account, path in ((REFERENCE, reference_journal), (CRASH, crash_journal))
    }
    reference = _items(url, env[REFERENCE], ts[REFERENCE])
    crashed = _items(url, env[CRASH], ts[CRASH])
    assert sorted(crashed) == sorted(reference)
    assert sum(len(v) for v in reference.values()) >= (5_000 if FULL else 200)
    for table in reference:
        assert crashed[table] == reference[table], table

    # writes repeated after the kills: at most one checkpoint interval's worth per kill
    written = {r: sum(n for (reg, _), n in counter.counts.items() if reg == r) for r in ts}
    extra = written[CRASH] - written[REFERENCE]
    rate = written[REFERENCE] / reference_seconds  # items per second, a generous upper bound
    bound = len(kills) * (rate * CHECKPOINT_EVERY_SECONDS + 100)
    assert 0 <= extra <= bound, (extra, bound, rate, len(kills))
    print(f"crash suite: {len(kills)} kills, {extra} items re-written (bound {bound:.0f})")
