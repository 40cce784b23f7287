"""When an engine starts: every journaled step's resume state against its action's models."""

from __future__ import annotations

from engine.actions import registry
from engine.runbook.model import Runbook
from engine.state.journal import Journal, StepState
from engine.state.resume import summary_of


def check_resume_state(runbook: Runbook, journal: Journal) -> None:
    """Every journaled step's cursors and summary against its action's models, at load: a hand
    edit that broke one is a JournalError (exit 2) before anything runs."""
    actions = registry()
    slots: list[tuple[str, str | None, StepState]] = []
    for step in runbook.steps:
        if step.id in journal.steps:
            slots.append((f"steps.{step.id}", step.action, journal.steps[step.id]))
    for rollback in runbook.rollbacks:
        for index, rstep in enumerate(rollback.steps):
            key = f"{rollback.id}#{index}"
            if key in journal.rollback_steps:
                where = f'rollback_steps."{key}"'
                slots.append((where, rstep.action, journal.rollback_steps[key]))
    for where, name, state in slots:
        action = actions.get(name or "")
        if action is None:  # a manual step, or an action a newer runbook renamed
            continue
        state.cursors_as(action.cursors, f"{where}.cursors")
        summary_of(state, action.summary, f"{where}.summary")
