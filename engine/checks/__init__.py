"""Automatic gate checks, registered by name. Each module exports `CHECKS: tuple[Check, ...]`."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from engine.core.context import Check
from engine.core.registry import discover


@cache
def registry() -> Mapping[str, Check]:
    return discover(__name__, __path__, "CHECKS")
