"""Plan time and real time, said the same way everywhere: "60 plan min = 1 s at x3600".

A rehearsal divides every wait by its time scale; evidence and progress name the plan's figure
first (what the runbook says), then what it took on the clock."""

from __future__ import annotations


def real_text(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds:.2g} s"
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


def scale_text(time_scale: float) -> str:
    return f"x{time_scale:.0f}" if time_scale == int(time_scale) else f"x{time_scale:g}"


def plan_span(plan_minutes: float, time_scale: float, queried_seconds: float | None = None) -> str:
    """`queried_seconds`: the real window actually read, when it differs (CloudWatch's shortest
    window is longer than a scaled one)."""
    if time_scale == 1:
        text = f"{plan_minutes:g} min"
    else:
        real = plan_minutes * 60.0 / time_scale
        text = f"{plan_minutes:g} plan min = {real_text(real)} at {scale_text(time_scale)}"
        if queried_seconds is not None and queried_seconds > real * 1.5:
            text += f", read as the last {real_text(queried_seconds)} (the shortest window)"
    return text
