"""Typed resume state: each action declares a pydantic model for its cursors and one for its
summary (registered with the `Action`). The journal keeps them as plain TOML tables; an action
works on the typed object (`ctx.cursors_as(Model)`), which every journal save writes back.

A cursor table a hand edit broke is one clear line (a `JournalError`), never a traceback.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from engine.state.errors import JournalError


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
