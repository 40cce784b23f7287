"""A gate's approval rules (the runbook's `approvers`, `min_approvals`,
`approver_not_operator`), judged on verified identities only. Pure: no I/O."""

from __future__ import annotations

from engine.runbook.approvers import any_match
from engine.runbook.model import Gate, GateItem
from engine.state.identity import Identity
from engine.state.journal import GateState


def tick_refusal(gate: Gate, item: GateItem, who: Identity) -> str | None:
    """One line when `who` may not tick (or untick) the item; None when it may."""
    if not item.approvers or any_match(item.approvers, who.principal):
        return None
    return (
        f"{gate.id}/{item.id} may be ticked only by {', '.join(item.approvers)}; "
        f"you are {who.principal}: nothing was changed"
    )


def approvers(gate: Gate, state: GateState | None) -> list[str]:
    """The distinct verified principals among the ticks of the gate's manual items, in tick
    order (a tick journaled before identities were verified counts for none)."""
    manual = {i.id for i in gate.items if i.kind == "manual"}
    ticks = sorted(
        (t for item_id, t in (state.ticks.items() if state else ()) if item_id in manual),
        key=lambda t: t.at,
    )
    return list(dict.fromkeys(t.identity.principal for t in ticks if t.identity))


def approval_problem(gate: Gate, state: GateState | None, driver: Identity | None) -> str | None:
    """Why the gate's approvals do not allow a GO yet (no override lifts it), or None."""
    found = approvers(gate, state)
    if gate.min_approvals and len(found) < gate.min_approvals:
        who = ", ".join(found) or "none"
        return (
            f"{len(found)}/{gate.min_approvals} distinct verified approvers ({who}): "
            "another identity must tick"
        )
    if gate.approver_not_operator:
        if driver is None:
            return "the identity driving the run is not recorded yet (`runbook run` records it)"
        if found and not set(found) - {driver.principal}:
            return (
                f"{driver.principal} drives the run and cannot be its only approver: "
                "someone else must tick"
            )
        if not found:
            return "no verified approver has ticked yet"
    return None


def override_refusal(gate: Gate, failing: list[str], who: Identity) -> str | None:
    """An override of unmet manual items follows their `approvers`: one line, or None."""
    for item in gate.items:
        named = item.id in failing and item.kind == "manual" and item.approvers
        if named and not any_match(item.approvers, who.principal):
            return (
                f"an override of {gate.id}/{item.id} needs one of "
                f"{', '.join(item.approvers)}; you are {who.principal}"
            )
    return None
