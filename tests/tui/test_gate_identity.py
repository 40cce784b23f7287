"""The gate screen shows who ticked by name and by verified identity, who may tick, how many
distinct approvers the gate still needs; GO and the override stay off until it has them
(issue 24; moto under Pilot)."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from engine.aws.target import Connection
from engine.run.engine import Engine
from tests.support.paths import MINI_RUNBOOK
from tests.support.world import seeded_engine
from tui.app import RunbookApp
from tui.screens.gate import GateScreen
from tui.screens.prompts import TextPrompt

ME = pwd.getpwuid(os.getuid()).pw_name
ITEMS = """  { id = "team-ready", text = "Team ready", kind = "manual" },
  { id = "qa-ready", text = "QA ready", kind = "manual", approvers = ["os:qa-*"] },
"""


@pytest.fixture
def engine(aws: Connection, tmp_path: Path) -> Engine:
    text = MINI_RUNBOOK.read_text()
    text = text.replace(
        'before_phase = "phase2"\n', 'before_phase = "phase2"\nmin_approvals = 2\n', 1
    ).replace('  { id = "team-ready", text = "Team ready", kind = "manual" },\n', ITEMS, 1)
    path = tmp_path / "rb.toml"
    path.write_text(text)
    return seeded_engine(aws, tmp_path / "j.toml", path, "world-mini", time_scale=1000)


def _evidence(screen: GateScreen) -> str:
    return str(screen.query_one("#gate-evidence").render())


async def test_the_gate_screen_shows_verified_identities_and_approvals(engine: Engine) -> None:
    app = RunbookApp(engine)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("r")
        await pilot.app.workers.wait_for_complete()
        await pilot.press("g")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        gate = app.screen
        assert isinstance(gate, GateScreen)
        await pilot.press("down", "space")  # tick team-ready here: this process's identity
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        text = _evidence(gate)
        assert "ticked by alice" in text and f"verified: os:{ME}" in text
        assert "arn:aws:sts::123456789012:user/moto" in text
        assert f"distinct verified approvers: os:{ME}" in text
        verdict = str(gate.query_one("#gate-verdict").render())
        assert "GO disabled:" in verdict and "1/2 distinct verified approvers" in verdict
        assert gate.check_action("go", ()) is None and gate.check_action("override", ()) is None

        await pilot.press("down", "space")  # qa-ready: this identity is not os:qa-*
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert "qa-ready" not in engine.journal.gates["gate-phase2"].ticks
        assert "may tick: os:qa-*" in _evidence(gate)

        await pilot.press("A")  # tick as the rehearsal's stand-in, typed in a prompt
        await pilot.pause()
        assert isinstance(app.screen, TextPrompt)
        for char in "qa-lead":
            await pilot.press(char)
        await pilot.press("enter")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        tick = engine.journal.gates["gate-phase2"].ticks["qa-ready"]
        assert tick.by == "alice" and tick.identity is not None
        assert tick.identity.principal == "os:qa-lead" and tick.identity.os_user == ME
        assert "as qa-lead (rehearsal, not verified)" in _evidence(gate)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert gate.view.approval_problem is None
        assert gate.check_action("go", ()) is True
