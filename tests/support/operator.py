"""An operator's answers to a waiting Engine, and what a function's flags say."""

from __future__ import annotations

import pytest

from engine.aws.target import Connection
from engine.run.engine import Engine
from tests.support.approvals import caller, manual_items

OK = lambda what, token: True  # noqa: E731 - consent in a test


def advance(engine: Engine, to: tuple[str, str]) -> None:
    """Answer gates and manual steps the way an operator would, until `to` is the next node."""
    for _ in range(80):
        node = engine.next_node()
        if node is not None and node.as_tuple() == to:
            return
        waiting = engine.waiting()
        if waiting and waiting.kind == "gate":
            gate = engine.runbook.gate(waiting.id)
            for i, item in enumerate(manual_items(gate)):
                engine.tick(gate.id, item.id, by="alice", caller=caller(i))
            engine.decide(gate.id, go=True, by="alice", override="rehearsal")
        elif waiting:
            engine.ack(waiting.id, by="alice")
        else:
            assert node is not None
            outcome = engine.run(until=node.id, confirm=OK)
            assert outcome.status == "done", outcome
    pytest.fail(f"never reached {to}")


def flag(aws: Connection, fn: str, name: str) -> str | None:
    conf = aws.client("lambda").get_function_configuration(FunctionName=fn)
    return conf.get("Environment", {}).get("Variables", {}).get(name)
