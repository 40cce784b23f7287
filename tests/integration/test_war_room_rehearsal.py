"""A whole rehearsal of the bundled runbook with `[notify]` on an SNS topic (issue 24): the
SQS queue subscribed to it gets one message for each wait, the alert, the automatic rollback
(its start and its end) and the end of the run, and nothing else; no message holds a secret.
The gate before Phase 5 needs two distinct approvers (`min_approvals = 2`): one person
rehearses it with a stand-in (`--as`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.aws.target import Connection
from engine.core.commands import Caller
from engine.core.outcome import CommandRefused
from engine.plan.loader import default_runbook_path
from engine.rehearsal.seed import inbox_name
from engine.rehearsal.simulator import set_error_rate
from engine.run.engine import Engine
from tests.support.approvals import manual_items
from tests.support.notify import attach, drain, event_ids
from tests.support.world import seeded_engine

TOPIC = "arn:aws:sns:us-east-1:123456789012:migration-war-room"
OK = lambda what, token: True  # noqa: E731 - consent in a test


def _answer(engine: Engine, kind: str, node_id: str) -> None:
    if kind == "step":
        engine.ack(node_id, by="alice", note="rehearsal")
        return
    gate = engine.runbook.gate(node_id)
    items = manual_items(gate)
    for item in items:  # one identity first
        engine.tick(gate.id, item.id, by="alice")
    if gate.min_approvals > 1:
        with pytest.raises(CommandRefused, match=r"1/2 distinct verified approvers"):
            engine.decide(gate.id, go=True, by="alice", override="rehearsal")
        engine.tick(gate.id, items[-1].id, by="bob", caller=Caller(rehearsal_as="bob"))
    engine.decide(gate.id, go=True, by="alice", override="rehearsal")


@pytest.mark.slow
def test_a_rehearsal_tells_the_topic_each_wait_alert_rollback_and_the_end(
    aws: Connection, tmp_path: Path
) -> None:
    path = tmp_path / "rb.toml"
    path.write_text(default_runbook_path().read_text() + f'\n[notify]\nsns_topic_arn = "{TOPIC}"\n')
    engine = seeded_engine(aws, tmp_path / "j.toml", path, "world-war-room", 1_000_000)
    notifier = attach(engine, engine.runbook.notify)  # type: ignore[arg-type]
    expected: list[str] = []
    injected = False
    for _ in range(60):
        outcome = engine.run(confirm=OK)
        if outcome.status == "done":
            break
        assert outcome.status == "waiting" and outcome.waiting, outcome
        node = outcome.waiting
        rollbacks = len(engine.journal.rollbacks)
        attempts = engine.journal.steps[node.id].attempts if node.kind == "step" else 0
        expected.append(f"wait-{node.kind}-{node.id}-r{rollbacks}-a{attempts}")
        if node.id == "gate-phase4" and not injected:
            set_error_rate(engine.clients, 5.0)  # the reads will fail: an alert, a rollback
            injected = True
        elif injected and rollbacks:
            set_error_rate(engine.clients, 0.0)
        _answer(engine, node.kind, node.id)
    else:
        pytest.fail("the rehearsal did not finish")
    assert notifier.close() == []
    journal = engine.journal
    alerts = [f"alert-{i}-{a['trigger']}" for i, a in enumerate(journal.alerts)]
    rollbacks = [
        f"rollback-{i}-{r.id}-{status}"
        for i, r in enumerate(journal.rollbacks)
        if r.by.startswith("trigger ")  # automatic: a person who rolls back knows
        for status in ("started", "done")
    ]
    assert alerts and rollbacks and all(r.status == "done" for r in journal.rollbacks)

    sqs = aws.client("sqs")
    bodies = drain(sqs, sqs.get_queue_url(QueueName=inbox_name(TOPIC))["QueueUrl"])
    got = event_ids(bodies)
    assert sorted(got) == sorted([*expected, *alerts, *rollbacks, "finished"])
    assert len(got) == len(set(got))  # each event once
    kinds = [json.loads(b.split("\n", 1)[1])["kind"] for b in bodies]
    assert kinds.count("alert") == len(alerts) and kinds.count("rollback") == len(rollbacks)
    assert kinds.count("finished") == 1 and kinds.count("failed") == 0
    print(
        f"{len(bodies)} messages: {len(expected)} waits, {len(alerts)} alerts, "
        f"{len(rollbacks)} rollback notices, 1 end"
    )
    text = "\n".join(bodies)
    assert "testing" not in text  # the credentials (moto's dummy key and secret)
    assert all(len(b.split("\n", 1)[0]) <= 200 for b in bodies)  # one short line each
    gate5 = journal.gates["gate-phase5"]
    assert {t.identity.principal for t in gate5.ticks.values() if t.identity} >= {"os:bob"}
