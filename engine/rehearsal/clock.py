"""A rehearsal's clock: how much plan time the runbook waits, the scale that fits it into a
few minutes, the ladder the console's +/- keys move along, and plan time across scale changes.

Pure functions (no I/O): the runbook and the journal's recorded scale changes in, numbers out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from engine.actions import registry as actions
from engine.checks import registry as checks
from engine.runbook.model import Runbook


def plan_wait_seconds(runbook: Runbook) -> float:
    """Every wait of the plan, in plan seconds: watch windows of steps and soaks at gates."""
    total = 0.0
    found_actions, found_checks = actions(), checks()
    for step in runbook.steps:
        action = found_actions.get(step.action or "")
        if action is not None and action.waits is not None:
            total += action.waits(step.bound)
    for gate in runbook.gates:
        for item in gate.items:
            check = found_checks.get(item.check or "")
            if check is not None and check.waits is not None:
                total += check.waits(item.bound)
    return total


def default_scale(runbook: Runbook) -> float:
    """The scale at which all the plan's waits take about `rehearsal.wall_minutes` of wall
    time, rounded to two significant digits (x1200 rather than x1187.5); never below 1."""
    wanted = plan_wait_seconds(runbook) / (runbook.rehearsal.wall_minutes * 60.0)
    if wanted <= 1:
        return 1.0
    digits = 1 - math.floor(math.log10(wanted))
    return float(round(wanted, digits))


def next_scale(current: float, ladder: Sequence[float], faster: bool) -> float:
    """The next rung of the ladder above (faster) or below the current scale; the end rung
    stays where it is."""
    rungs = sorted(set(ladder))
    if faster:
        return next((r for r in rungs if r > current), rungs[-1] if rungs else current)
    return next((r for r in reversed(rungs) if r < current), rungs[0] if rungs else current)


def clock_label(scale: float) -> str:
    """What the top bar says about the clock, always."""
    if scale == 1:
        return "REAL TIME"
    return f"REHEARSAL x{scale:.0f}" if scale == int(scale) else f"REHEARSAL x{scale:g}"
