"""Crash and resume: SIGKILL at 50+ points across every kind of step, on 5,000 varied items
(RUNBOOK_CRASH_FULL=1; CI runs a fast version with one kill per kind of step).

One moto server serves two worlds seeded alike, in two accounts: one runs the whole runbook
once without interruption (the reference), the other runs it again with `runbook run` killed
with SIGKILL at deterministic points: at the start of every step and rollback step, at a step's
first log lines, at each table's first progress line, and mid-migration once several scan pages
of every segment are applied (the writes are counted inside moto, so the kill lands with writes
in flight). A kill point is used once, so the run always moves on. After every kill the journal
parses; at the end every DynamoDB item of the crashed world equals the reference item for item
(the run's own timestamp aside). Every item write is counted per key, so the writes the crashed
run repeated are known exactly and charged to the kill before them: a migration re-sends at most
the one page each segment's cursor had not passed (the cursor of every applied page is on disk,
and the page read ahead is not written before that), any other step at most one batch.

It tests behaviour only (what the target holds, how many writes reached it), so it does not
depend on how an action writes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.actions.migrate.entity import MigrateParams
from engine.cli.app import main
from engine.plan.loader import default_runbook_path, load_runbook
from engine.state.journal import JournalStore
from tests.support.two_worlds import (
    FIRST,
    SECOND,
    answer_waiting,
    common,
    seed_accounts,
    world_items,
)
from tests.support.world import fresh_moto_server

# The plan's legacy entity tables hold 10 items; x 500 = 5,000 with RUNBOOK_CRASH_FULL=1 (every
# kill point, 50+). CI runs the fast version: x 20 = 200 legacy items, one kill per kind of step
# (plus one mid-migration, one in the rollback), on the same code path.
FULL = os.environ.get("RUNBOOK_CRASH_FULL") == "1"
SCALE = 500 if FULL else 20
MIN_KILLS = 50 if FULL else 12
# scan pages of the migrations, small enough that every segment has several: a kill mid-table
# then finds pages applied before it, and the cursor must have kept them (re-write bound below)
PAGE_SIZE = 50 if FULL else 5
BATCH = 25  # a BatchWriteItem's items
# the kinds whose kill mid-way (at a table's first progress line) the fast version keeps: they
# move or read data in pages, so a kill there leaves work half done; every other kind is
# killed at its start (CI's time; RUNBOOK_CRASH_FULL=1 kills every kind at every point)
MOVES_DATA = {"backup_tables", "analyze_legacy", "migrate_entity", "validate_migration"}
MID_WRITE_BOUNDS = 2  # a mid-migration kill comes after twice the writes a kill may repeat
CRASH, REFERENCE = FIRST, SECOND
TIME_SCALE = "1000000"
ROLLBACK_AT = ("gate", "gate-phase5")  # roll back phase 4 (reads) while waiting here, once


class WriteCounter:
    """Every item write inside moto (whatever API sent it), per (account, table, key), each
    with its epoch: the number of kills the crashed run had had when the write landed."""

    def __init__(self) -> None:
        self.writes: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        self.epoch = 0
        self.lock = threading.Lock()
        self.on_write: Callable[[str], None] = lambda account: None

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from moto.dynamodb.models.table import Table

        original = Table.put_item
        counter = self

        def put_item(table: Any, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            result = original(table, item_attrs, *args, **kwargs)
            key = json.dumps(
                [item_attrs.get(table.hash_key_attr), item_attrs.get(table.range_key_attr or "")],
                sort_keys=True,
            )
            with counter.lock:
                counter.writes[(table.account_id, table.name, key)].append(counter.epoch)
            counter.on_write(table.account_id)
            return result

        monkeypatch.setattr(Table, "put_item", put_item)

    def total(self, account: str) -> int:
        return sum(len(e) for (a, _, _), e in self.writes.items() if a == account)

    def rewritten_per_kill(self, crashed: str, reference: str) -> Counter[int]:
        """Writes of the crashed world beyond the reference's, per item, counted exactly and
        charged to the kill that preceded them (the later writes of an item are the repeats)."""
        per_kill: Counter[int] = Counter()
        for (account, table, key), epochs in self.writes.items():
            if account != crashed:
                continue
            extra = len(epochs) - len(self.writes.get((reference, table, key), []))
            for epoch in sorted(epochs)[len(epochs) - extra :] if extra > 0 else []:
                per_kill[epoch] += 1
        return per_kill


def small_pages_runbook(folder: Path) -> Path:
    """The bundled runbook with every migration scanning PAGE_SIZE items per page: the re-write
    bound is then well below what a mid-migration kill finds written, so a lagging cursor
    shows."""

    def small(match: re.Match[str]) -> str:
        params = re.sub(r",? *page_size = \d+", "", match.group(1))
        return f"{params}, page_size = {PAGE_SIZE} }}"

    text, n = re.subn(
        r'(action = "migrate_entity"\nparams = \{ entity = "\w+"[^}]*?) *\}',
        small,
        default_runbook_path().read_text(),
    )
    assert n == 4, n  # the four migrations
    path = folder / "runbook.toml"
    path.write_text(text)
    assert load_runbook(path).runbook.step("migrate-expenses").params["page_size"] == PAGE_SIZE
    return path


World = tuple[str, "WriteCounter", dict[str, dict[str, str]], Path]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    rb_path = small_pages_runbook(tmp_path_factory.mktemp("runbook"))
    with fresh_moto_server() as url:
        env = seed_accounts(url, load_runbook(rb_path).runbook, SCALE)
        patch = pytest.MonkeyPatch()
        counter = WriteCounter()
        counter.install(patch)
        yield url, counter, env, rb_path
        patch.undo()


class Killer:
    """Runs `runbook run|rollback` in a child and SIGKILLs it at the first unused kill point
    it reaches: a step's start, a step's first log lines, a table's first progress line, and
    (counted inside moto, so exactly) a migration's N-th write, with more writes in flight."""

    def __init__(
        self, env: dict[str, str], every_point: bool, rb_path: Path, counter: WriteCounter
    ) -> None:
        self.used: list[str] = []
        self.env = {**os.environ, **env}
        self.every_point = every_point
        self.kinds: set[str] = set()
        self.rb = load_runbook(rb_path).runbook
        self.counter = counter
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[str] | None = None
        self.step: str | None = None
        self.step_writes = 0
        self.killed = False
        counter.on_write = self.on_write

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
        if what == "progress" and kind not in MOVES_DATA:  # its start kill covers the kind
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
            # last)
            table, _, rest = text.partition(":")
            done, _, total = rest.split()[0].partition("/")
            if done.replace(",", "") != total.replace(",", ""):
                return f"progress:{step}:{table}"
        return None

    def on_write(self, account: str) -> None:
        """A moto thread, after an item write: mid-migration kills, twice per migration, each
        once several scan pages of every segment are applied (the cursor must keep them)."""
        with self.lock:
            step, proc = self.step, self.proc
            if account != CRASH or proc is None or self.killed or step is None or "#" in step:
                return
            spec = self.rb.step(step)
            if spec.action != "migrate_entity":
                return
            self.step_writes += 1
            if self.step_writes < MID_WRITE_BOUNDS * rewrite_bound(self.rb, f"write:{step}"):
                return
            label = next((f"write:{step}:{n}" for n in (1, 2) if f"write:{step}:{n}" not in
                          self.used), None)  # fmt: skip
            if label is None or not self.wanted(label):
                return
            self.killed = True
            self.used.append(label)
            with self.counter.lock:  # later writes are charged to this kill
                self.counter.epoch = len(self.used)
            os.kill(proc.pid, signal.SIGKILL)

    def _kill(self, proc: subprocess.Popen[str], label: str) -> None:
        with self.lock:
            if self.killed:
                return
            self.killed = True
            self.used.append(label)
            with self.counter.lock:
                self.counter.epoch = len(self.used)
            os.kill(proc.pid, signal.SIGKILL)

    def run(self, argv: list[str], journal: Path) -> int | None:
        """The child's exit code, or None when it was killed."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", *argv],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, bufsize=1, env=self.env,
        )  # fmt: skip
        assert proc.stdout is not None
        with self.lock:
            self.proc, self.step, self.step_writes, self.killed = proc, None, 0, False
        for line in proc.stdout:
            if line.startswith("==> "):
                with self.lock:
                    self.step, self.step_writes = line.split()[2].rstrip(":"), 0
            label = self.point(line, self.step)
            if label and self.wanted(label):
                self._kill(proc, label)
                break
        code = proc.wait()
        with self.lock:
            killed, self.proc = self.killed, None
        if killed:
            JournalStore(journal).load()  # the journal parses after every kill
            return None
        return code


def drive(
    url: str,
    journal: Path,
    rb_path: Path,
    capsys: pytest.CaptureFixture[str],
    killer: Killer | None,
) -> None:
    rb = load_runbook(rb_path).runbook
    flags = common(url, journal, rb_path)
    rolled_back = False
    for _ in range(400):
        argv = ["run", "--yes", "--time-scale", TIME_SCALE, *flags]
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
        main(["status", "--json", *flags])
        waiting = json.loads(capsys.readouterr().out)["waiting"]
        if not rolled_back and (waiting["kind"], waiting["id"]) == ROLLBACK_AT:
            argv = ["rollback", "phase4", "--yes", "--by", "crash", *flags]
            while True:
                code = main(argv) if killer is None else killer.run(argv, journal)
                if code is not None:
                    assert code == 0, code
                    break
            rolled_back = True
            continue
        answer_waiting(flags, rb, capsys, "crash")
    pytest.fail("the run did not finish")


def rewrite_bound(rb: Any, label: str) -> int:
    """Items one kill at `label` may make the run write again. A migration: per segment, the
    one page its cursor has not passed (the cursor moves only past applied pages and is on
    disk at once; the page read ahead is not written before that). Any other step: the batch
    it was writing."""
    step_id = label.split(":")[1]
    step = None if "#" in step_id else rb.step(step_id)
    if step is not None and step.action == "migrate_entity":
        p = MigrateParams.model_validate(step.params)
        return p.segments * (p.page_size or PAGE_SIZE)
    return BATCH


@pytest.mark.slow
def test_sigkill_anywhere_then_resume_equals_an_uninterrupted_run(
    world: World,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, counter, env, rb_path = world
    reference_journal = tmp_path / "reference.toml"
    crash_journal = tmp_path / "crash.toml"

    with monkeypatch.context() as m:  # the reference runs in-process, in its own account
        for key, value in env[REFERENCE].items():
            m.setenv(key, value)
        started = time.monotonic()
        drive(url, reference_journal, rb_path, capsys, killer=None)
        reference_seconds = time.monotonic() - started
    killer = Killer(env[CRASH], every_point=FULL, rb_path=rb_path, counter=counter)
    for key, value in env[CRASH].items():
        monkeypatch.setenv(key, value)
    drive(url, crash_journal, rb_path, capsys, killer=killer)

    # >= 50 kill points, across every kind of step
    kills = killer.used
    crash_seconds = time.monotonic() - started - reference_seconds
    print(f"reference {reference_seconds:.0f} s, crashed run {crash_seconds:.0f} s")
    print(f"{len(kills)} kills: {kills}")
    assert len(kills) >= MIN_KILLS, kills
    killed_steps = {k.split(":")[1] for k in kills}
    rb = load_runbook(rb_path).runbook
    kinds = {rb.step(s).action for s in killed_steps if "#" not in s}
    assert {
        "backup_tables", "company_mapping", "migrate_entity", "validate_migration", "set_flags",
        "watch_window", "shift_reads", "delete_tables",
    } <= kinds, kinds  # fmt: skip
    assert any("#" in s for s in killed_steps), "no kill inside the rollback"
    assert any(k.startswith("write:migrate-") for k in kills), "no kill mid-migration"

    # the crashed world equals the reference, item for item
    ts = {
        account: JournalStore(path).load().run.migration_ts
        for account, path in ((REFERENCE, reference_journal), (CRASH, crash_journal))
    }
    reference = world_items(url, env[REFERENCE], ts[REFERENCE])
    crashed = world_items(url, env[CRASH], ts[CRASH])
    assert sorted(crashed) == sorted(reference)
    assert sum(len(v) for v in reference.values()) >= (5_000 if FULL else 200)
    for table in reference:
        assert crashed[table] == reference[table], table

    # writes repeated after the kills, counted item by item and charged to the kill before
    # them: at most what was applied but not yet checkpointed, one scan page per segment plus
    # the writes in flight for a migration (one batch elsewhere)
    per_kill = counter.rewritten_per_kill(CRASH, REFERENCE)
    assert per_kill[0] == 0, per_kill[0]  # nothing written twice before the first kill
    over = {
        kills[n - 1]: (count, rewrite_bound(rb, kills[n - 1]))
        for n, count in sorted(per_kill.items())
        if n > 0 and count > rewrite_bound(rb, kills[n - 1])
    }
    assert over == {}, over
    extra = sum(per_kill.values())
    assert extra == counter.total(CRASH) - counter.total(REFERENCE) >= 0
    worst = max(per_kill.items(), key=lambda kv: kv[1], default=(0, 0))
    print(
        f"crash suite: {len(kills)} kills, {extra} items re-written, at most {worst[1]} after "
        f"one kill ({kills[worst[0] - 1] if worst[0] else '-'})"
    )
