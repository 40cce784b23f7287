"""`runbook plan`: the calls every node of a runbook would make, without any I/O."""

from __future__ import annotations

from typing import Literal

from engine.actions import registry as action_registry
from engine.core.context import PlannedCall
from engine.runbook.model import Runbook

Node = tuple[Literal["gate", "step"], str]


def plan_calls(runbook: Runbook) -> list[tuple[Node, list[PlannedCall]]]:
    """`runbook plan`: every node with the calls it would make. No I/O at all."""
    actions = action_registry()
    out: list[tuple[Node, list[PlannedCall]]] = []
    for kind, node_id in runbook.sequence():
        if kind == "gate":
            gate = runbook.gate(node_id)
            out.append(
                (
                    (kind, node_id),
                    [
                        PlannedCall("gate", item.check or "operator tick", item.id, item.text)
                        for item in gate.items
                    ],
                )
            )
            continue
        step = runbook.step(node_id)
        if step.kind == "manual":
            out.append(
                (
                    (kind, node_id),
                    [PlannedCall("operator", "acknowledge", step.id, step.instructions[:60])],
                )
            )
            continue
        action = actions[step.action or ""]
        out.append(((kind, node_id), action.plan(runbook, step.bound)))
    return out
