"""The selected step: what it does, when, its state, result or error."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from engine.journal import Journal, StepState
from engine.model import Runbook
from tui.format import STATUS_GLYPH, slot_vs_actual


class StepDetail(Static):
    def show_step(
        self,
        runbook: Runbook,
        journal: Journal,
        step_id: str,
        waiting: bool,
        next_gate: str | None = None,
    ) -> None:
        step = runbook.step(step_id)
        state = journal.steps.get(step_id) or StepState()
        status = "waiting" if waiting else state.status
        text = Text()
        text.append(f"{STATUS_GLYPH[status]} {step.title}\n", style="bold")
        kind = "manual step" if step.kind == "manual" else f"action {step.action}"
        if step.destructive:
            kind += "  DESTRUCTIVE"
        text.append(f"{step.id} · {runbook.phase(step.phase).title} · {kind}\n", style="dim")
        text.append(f"{status.upper()}  attempt {state.attempts}  ")
        text.append(slot_vs_actual(step.slot, state.started_at, state.finished_at) + "\n")
        if state.error:
            text.append(f"error: {state.error}\n", style="bold red")
        if step.kind == "manual":
            if state.acked_by:
                text.append(f"acknowledged by {state.acked_by} at {state.acked_at}\n")
            else:
                text.append(step.instructions + "\n", style="italic")
        if state.summary:
            pairs = [f"{k}={v}" for k, v in list(state.summary.items()) if not isinstance(v, dict)]
            text.append("result: " + ", ".join(pairs)[:300] + "\n")
        if next_gate:
            text.append(next_gate, style="dim")
        self.update(text.rstrip() or text)

    def show_gate(self, runbook: Runbook, journal: Journal, gate_id: str, waiting: bool) -> None:
        gate = runbook.gate(gate_id)
        state = journal.gates.get(gate_id)
        text = Text()
        text.append(f"GATE {gate.title}\n", style="bold")
        decision = state.decision if state and state.decision else "undecided"
        who = f" by {state.by} at {state.at}" if state and state.by else ""
        text.append(f"{decision}{who}" + ("  (the run waits here)" if waiting else "") + "\n")
        for item in gate.items:
            ticked = bool(state and item.id in state.ticks)
            evidence = state.evidence.get(item.id) if state else None
            ok = ticked if item.kind == "manual" else (evidence.ok if evidence else None)
            mark = {True: "x", False: " ", None: "?"}[ok]
            text.append(f"[{mark}] {item.text} ({item.kind})\n")
        text.append("press g to open the gate", style="dim")
        self.update(text)
