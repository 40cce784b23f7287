"""Security promises, end to end through the CLI on the embedded world:
- a planted secret (a non-flag Lambda variable, the operator's AWS secret key) never appears in
  the journal, the log, any artifact, the report, or anything printed;
- every file beside the journal is 0600 and every folder 0700;
- no destructive call happens without a recorded GO on its step's gate, and no table is deleted
  without an AVAILABLE backup (checked at the moment of each call, by a botocore hook);
- `--only` cannot skip the gate of a destructive step; a read-only console cannot act."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from engine.aws.target import Connection
from engine.cli.app import main
from engine.plan.loader import default_runbook_path, load_runbook
from engine.rehearsal.embedded import record_path_for, stop_world
from engine.state.journal import JournalStore
from tests.support.approvals import as_flags, manual_items

SECRET_FN = "PLANTED-fn-secret-4b1d9e"
SECRET_AWS = "PLANTED-aws-secret-77c0aa"
DESTRUCTIVE = {
    "DeleteTable", "DeleteFunction", "DeleteLogGroup", "DeleteResource", "DeleteMethod",
    "DeleteRestApi", "DeleteBackup", "DeleteAlarms", "DeleteItem",
}  # fmt: skip
TIME_SCALE = "1000000"


class DestructiveGuard:
    """A botocore before-call hook on every client the engine makes: at each destructive call,
    the journal on disk must show the running step's gate GO, and a table an AVAILABLE backup."""

    def __init__(self, journal: Path) -> None:
        self.journal = journal
        self.calls: list[str] = []
        self.violations: list[str] = []
        self.backups_client: Any = None

    def __call__(self, model: Any = None, params: Any = None, **_: Any) -> None:
        if model is None or model.name not in DESTRUCTIVE:
            return
        try:
            self._check(model, params)
        except Exception as exc:  # a hook must not fail the step: record it instead
            self.violations.append(f"guard error at {model.name}: {exc!r}")

    def _check(self, model: Any, params: Any) -> None:
        journal = JournalStore(self.journal).load()
        rb = load_runbook(default_runbook_path()).runbook
        running = [s for s in rb.steps if journal.steps.get(s.id, None) is not None
                   and journal.steps[s.id].status == "running"]  # fmt: skip
        what = f"{model.name}({params.get('TableName') or params.get('FunctionName') or ''})"
        self.calls.append(what)
        if not running:
            self.violations.append(f"{what} with no step running")
            return
        step = running[0]
        gate = step.requires_gate
        if not gate or journal.gates.get(gate) is None or journal.gates[gate].decision != "GO":
            self.violations.append(f"{what} in {step.id} without a GO on {gate}")
        if model.name == "DeleteTable" and self.backups_client is not None:
            summaries = self.backups_client.list_backups(TableName=params["TableName"])
            if not any(b["BackupStatus"] == "AVAILABLE" for b in summaries["BackupSummaries"]):
                self.violations.append(f"{what} without an AVAILABLE backup")


@pytest.fixture
def guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DestructiveGuard:
    journal = tmp_path / "sec" / "j.toml"
    hook = DestructiveGuard(journal)
    original = Connection.client

    def client(self: Connection, service: str) -> Any:
        made = service not in self._clients
        c = original(self, service)
        if made:
            c.meta.events.register("before-parameter-build", hook)
            if service == "dynamodb" and hook.backups_client is None:
                hook.backups_client = self.session.client(
                    "dynamodb", endpoint_url=self.endpoint_url
                )
        return c

    monkeypatch.setattr(Connection, "client", client)
    return hook


def _planted_runbook(tmp_path: Path) -> Path:
    text = default_runbook_path().read_text()
    assert '"s3cr3t-not-a-flag"' in text
    path = tmp_path / "rb.toml"
    path.write_text(text.replace('"s3cr3t-not-a-flag"', f'"{SECRET_FN}"'))
    return path


def _drive(common: list[str], capsys: pytest.CaptureFixture[str], screen: list[str]) -> None:
    """Answer every gate and manual step the way an operator would, until the run is done."""
    rb = load_runbook(default_runbook_path()).runbook

    def call(*argv: str) -> int:
        code = main([*argv, *common])
        out = capsys.readouterr()
        screen.extend([out.out, out.err])
        return code

    for _ in range(60):
        code = call("run", "--yes", "--time-scale", TIME_SCALE)
        if code == 0:
            return
        assert code == 3, screen[-1]
        assert main(["status", "--json", *common]) == 0
        out = capsys.readouterr()
        screen.extend([out.out, out.err])
        waiting = json.loads(out.out)["waiting"]
        if waiting["kind"] == "step":
            assert call("ack", waiting["id"], "--by", "sec") == 0
            continue
        gate = rb.gate(waiting["id"])
        for i, item in enumerate(manual_items(gate)):
            assert call("tick", gate.id, item.id, "--by", "sec", *as_flags(i)) == 0
        if call("decide", gate.id, "--go", "--by", "sec") != 0:
            assert call("decide", gate.id, "--go", "--by", "sec", "--override", "rehearsal") == 0
    pytest.fail("the run did not finish")


@pytest.mark.slow
def test_secrets_modes_and_destructive_calls_on_a_whole_run(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    guard: DestructiveGuard,
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_AWS)
    journal = guard.journal
    common = ["--runbook", str(_planted_runbook(tmp_path)), "--journal", str(journal)]
    screen: list[str] = []
    try:
        # --only cannot reach a destructive step past its gate
        assert main(["run", "--only", "delete-deprecated-tables", "--yes", *common]) != 0
        _drive(common, capsys, screen)
        assert main(["report", *common]) == 0
        out = capsys.readouterr()
        screen.extend([out.out, out.err])
    finally:
        stop_world(record_path_for(journal))

    # destructive calls: there were some, each behind a GO and (tables) an AVAILABLE backup
    assert any(c.startswith("DeleteTable") for c in guard.calls), guard.calls
    assert any(c.startswith("DeleteFunction") for c in guard.calls), guard.calls
    assert guard.violations == []

    # planted secrets: nowhere on disk beside the journal, nowhere on screen
    folder = journal.parent
    printed = "".join(screen)
    assert "every step is done" in printed
    for secret in (SECRET_FN, SECRET_AWS):
        assert secret not in printed
        for path in folder.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path

    # modes: files 0600, folders 0700 (the folder of the journal included)
    for path in [folder, *folder.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        expected = 0o700 if path.is_dir() else 0o600
        assert mode == expected, f"{path}: {oct(mode)}"
    names = {p.name for p in folder.iterdir()}
    assert {"j.toml", "j.log", "j.toml.lock", "j.artifacts"} <= names


async def test_a_read_only_console_cannot_act(aws: Connection, tmp_path: Path) -> None:
    """Another process drives: every key of the console, and every key of every screen it can
    open, changes nothing and calls no engine command."""
    from tests.support.paths import MINI_RUNBOOK
    from tests.support.tui_states import HOLDER
    from tests.support.world import seeded_engine
    from tui.app import RunbookApp

    engine = seeded_engine(aws, tmp_path / "j.toml", MINI_RUNBOOK, "world-ro", time_scale=1000)
    assert engine.run().status == "waiting"  # at gate-phase2, with a manual item unticked
    before = engine.store.path.read_bytes()
    acted: list[str] = []
    for name in ("run", "decide", "tick", "untick", "ack", "rollback", "request_stop"):
        monkey = (lambda n: lambda *a, **k: acted.append(n))(name)
        object.__setattr__(engine, name, monkey)
    viewer = RunbookApp(engine, read_only=True, holder=HOLDER, greet=False)
    async with viewer.run_test(size=(80, 24)) as pilot:
        for key in ("r", "s", "a", "b", "g", "space", "y", "n", "enter", "down", "space", "y",
                    "p", "h", "a", "s", "e", "2", "enter", "escape", "escape", "b", "enter",
                    "y", "escape", "a", "o", "k", "enter", "escape"):  # fmt: skip
            await pilot.press(key)
            await pilot.pause()
        await viewer.workers.wait_for_complete()
        assert not viewer.running
    assert acted == []
    assert engine.store.path.read_bytes() == before
