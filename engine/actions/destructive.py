"""What a destructive action holds before it deletes anything: its step's gate is GO."""

from __future__ import annotations

from engine.core.context import ActionContext


class Refused(RuntimeError):
    """A destructive action's precondition does not hold; nothing was deleted."""


def require_go(ctx: ActionContext) -> str:
    """The step's required gate must be GO; a destructive step without one is refused."""
    step = ctx.runbook.find_step(ctx.step_id)
    gate_id = step.requires_gate if step else None
    if not gate_id:
        raise Refused(f"{ctx.step_id}: a deletion needs a step with requires_gate; refused")
    if not ctx.gate_is_go(gate_id):
        decision = ctx.journal.gate(gate_id).decision or "undecided"
        raise Refused(f"{ctx.step_id}: gate {gate_id} is {decision}, not GO; nothing deleted")
    return gate_id
