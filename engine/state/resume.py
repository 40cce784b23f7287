"""Reading another step's facts: one typed accessor per fact is declared beside the action
that writes it (e.g. `engine.actions.prepare.backup.backups_of`); these are what it builds on."""

from __future__ import annotations

from engine.state.journal import Journal, StepState
from engine.state.records import M, parse


def cursors_of(journal: Journal, step_id: str, model: type[M]) -> M | None:
    """The typed cursors of another step (a read-only view), or None if it never ran."""
    state = journal.steps.get(step_id)
    if state is None:
        return None
    return state.read_cursors(model, f"steps.{step_id}.cursors")


def summary_of(state: StepState | None, model: type[M], where: str) -> M | None:
    """A step's summary as `model`, or None if it has none yet."""
    if state is None or not state.summary:
        return None
    return parse(model, state.summary, where)
