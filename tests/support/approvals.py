"""Ticking a gate the way one person rehearses it: every other manual item is ticked as a
stand-in approver (`--as`), so a gate that needs two distinct approvers can go GO."""

from __future__ import annotations

from typing import Any

from engine.core.commands import Caller

STAND_IN = "second-approver"


def manual_items(gate: Any) -> list[Any]:
    return [item for item in gate.items if item.kind == "manual"]


def as_flags(index: int) -> list[str]:
    """CLI flags for the index-th manual item of a gate: none, then `--as`, alternately."""
    return ["--as", STAND_IN] if index % 2 else []


def caller(index: int) -> Caller | None:
    """The same for an Engine called in process."""
    return Caller(rehearsal_as=STAND_IN) if index % 2 else None
