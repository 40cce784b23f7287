"""A rehearsal of the bundled runbook driven through the console, keys only, on moto.

Run, tick every gate item, decide GO, acknowledge manual steps, watch the read shift; then
inject errors and see the trigger fire and roll the reads back on its own (auto_rollback).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.aws.target import Connection
from engine.core.views import NodeRef
from engine.plan.loader import default_runbook_path
from engine.rehearsal.simulator import set_error_rate
from engine.run.engine import Engine
from engine.state.journal import JournalStore
from tests.support.pilot_waits import settle
from tests.support.world import seeded_engine
from tui.app import RunbookApp
from tui.screens.gate import GateScreen
from tui.screens.rollback import RollbackScreen


async def pass_gate(pilot, engine: Engine, gate_id: str) -> None:
    await pilot.press("g")
    await settle(pilot)
    assert isinstance(pilot.app.screen, GateScreen)
    for item in engine.runbook.gate(gate_id).items:
        if item.kind == "manual":
            await pilot.press("space")
        await pilot.press("down")
    await pilot.pause()
    await pilot.press("y")
    await settle(pilot)
    decision = engine.journal.gates[gate_id]
    assert decision.decision == "GO", {k: v.detail for k, v in decision.evidence.items()}


@pytest.mark.slow
async def test_rehearsal_through_the_console(aws: Connection, tmp_path: Path) -> None:
    engine = seeded_engine(
        aws, tmp_path / "j.toml", default_runbook_path(), "world-tui", time_scale=1_000_000
    )
    app = RunbookApp(engine, greet=False)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(40):
            if engine.next_node() == NodeRef.step("capture-baseline"):
                break
            waiting = engine.waiting()
            if waiting and waiting.kind == "gate":
                await pass_gate(pilot, engine, waiting.id)
            elif waiting:
                await pilot.press("a")
                await pilot.pause()
                await pilot.press("enter")
                await pilot.pause()
            else:
                await pilot.press("r")
                await settle(pilot)
                failed = [s for s, st in engine.journal.steps.items() if st.status == "failed"]
                assert not failed, engine.journal.steps[failed[0]].error
        assert engine.next_node() == NodeRef.step("capture-baseline")
        assert engine.journal.gates["gate-phase4"].decision == "GO"
        set_error_rate(engine.clients, 5.0)
        await pilot.press("r")
        await settle(pilot)
        banner = app.query_one("#alert")
        assert banner.has_class("visible")  # it says what happened, with no key pressed
        assert "rollback-reads ran automatically" in str(banner.render())
        assert not isinstance(app.screen, RollbackScreen)
    saved = JournalStore(tmp_path / "j.toml").load()
    assert saved.alerts and saved.alerts[-1]["trigger"] == "error-rate"
    assert saved.rollbacks[-1].id == "rollback-reads" and saved.rollbacks[-1].status == "done"
    assert saved.rollbacks[-1].by == "trigger error-rate"
    assert saved.steps["read-shift-10"].status == "rolled_back"
    assert saved.step("read-shift-50").status == "pending"  # the trigger stopped the shift
    lam = aws.client("lambda")
    for fn in engine.runbook.flags.functions:
        env = lam.get_function_configuration(FunctionName=fn)["Environment"]["Variables"]
        assert env["READ_FROM_COMPANY_SCOPED"] == "false", fn
        assert env["API_SIGNING_SECRET"] == "s3cr3t-not-a-flag"  # other variables survive
