"""Generic actions, registered by name. Each module exports `ACTIONS: tuple[Action, ...]`."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from engine.core.context import Action
from engine.core.registry import discover


@cache
def registry() -> Mapping[str, Action]:
    return discover(__name__, __path__, "ACTIONS")
