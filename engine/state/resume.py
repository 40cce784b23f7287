"""Typed resume state: each action declares a pydantic model for its cursors and one for its
summary (registered with the `Action`). The journal keeps them as plain TOML tables; an action
works on the typed object (`ctx.cursors_as(Model)`), which every journal save writes back, and
other modules read another step's facts through one typed accessor per fact, declared beside
the action that writes it (e.g. `engine.actions.prepare.backup.backups_of`).

A cursor table a hand edit broke is one clear line (a `JournalError`), never a traceback.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from engine.state.journal import Journal, JournalError, StepState


class Cursors(BaseModel):
    """An action's resume state. Unknown keys are refused: a typo in a hand edit is caught."""

    model_config = ConfigDict(extra="forbid")


class Record(BaseModel):
    """A record inside cursors (one table's backup, one function's flags): strict as well."""

    model_config = ConfigDict(extra="forbid")


class Summary(BaseModel):
    """What a step reports when done. Extra keys are kept (the runner adds `accepted_by`)."""

    model_config = ConfigDict(extra="allow")


class NoCursors(Cursors):
    """An action that keeps no resume state."""


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: dict[str, Any], where: str) -> M:
    """`data` as `model`, or one line naming the first bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(top)"
        raise JournalError(
            f"journal {where}.{field}: {first['msg']} ({exc.error_count()} problem(s) in "
            f"{model.__name__}); fix or remove it by hand, or restore the journal"
        ) from None


def dump(value: BaseModel) -> dict[str, Any]:
    """A model as the journal keeps it: JSON types (datetimes as ISO text), no nulls."""
    return value.model_dump(mode="json", exclude_none=True)


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


def check_resume_state(runbook: Any, journal: Journal) -> None:
    """Every journaled step's cursors and summary against its action's models, at load: a hand
    edit that broke one is a JournalError (exit 2) before anything runs."""
    from engine.actions import registry  # actions build on this module

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
