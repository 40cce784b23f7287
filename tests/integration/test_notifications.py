"""Notifications (issue 24) on a rehearsal: an SNS topic with an SQS queue subscribed (moto),
and a webhook on a local HTTP server, receive exactly the events that happened, each once;
no message, journal line, log line or screen holds the webhook's token; a hanging webhook
never holds the run, and its failed deliveries are journaled, reported and shown."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from engine.aws.target import Connection, TargetSpec, identify
from engine.core.views import NodeRef
from engine.plan.loader import load_runbook
from engine.rehearsal.seed import inbox_name, seed_world
from engine.rehearsal.world import EMBEDDED
from engine.run.core import EngineOptions
from engine.run.engine import Engine
from engine.run.report import render_report
from engine.run.status_text import render_status
from engine.session.journals import new_journal
from engine.state.journal import JournalStore
from tests.support.notify import TOKEN, attach, drain, event_ids, webhook
from tests.support.paths import MINI_RUNBOOK

TOPIC = "arn:aws:sns:us-east-1:123456789012:runbook-war-room"
OK = lambda what, token: True  # noqa: E731 - consent in a test


def _runbook(tmp_path: Path, notify: str) -> Path:
    path = tmp_path / "rb.toml"
    path.write_text(MINI_RUNBOOK.read_text() + "\n[notify]\n" + notify)
    return path


def _engine(aws: Connection, rb_path: Path, journal: Path, seed: bool = True) -> Engine:
    loaded = load_runbook(rb_path)
    if seed:
        seed_world(aws, loaded.runbook, "world-mini")
    target = identify(TargetSpec(), aws, "world-mini")
    return Engine(
        loaded.runbook,
        new_journal(loaded, target, "alice"),
        JournalStore(journal),
        aws.client,
        EngineOptions(operator="alice", time_scale=1000, world=EMBEDDED),
    )


def _to_the_end(engine: Engine) -> list[str]:
    """Run, answering each wait as an operator would; the waits met, in order."""
    waits = []
    for _ in range(10):
        outcome = engine.run(confirm=OK)
        if outcome.status == "done":
            return waits
        assert outcome.status == "waiting" and outcome.waiting is not None, outcome
        waits.append(str(outcome.waiting))
        if outcome.waiting.kind == "gate":
            engine.tick("gate-phase2", "team-ready", by="alice")
            engine.decide("gate-phase2", go=True, by="alice")
        else:
            engine.ack(outcome.waiting.id, by="alice")
    pytest.fail("the run did not finish")


def test_sns_and_a_webhook_get_each_event_once_and_no_secret(
    aws: Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with webhook() as hook:
        monkeypatch.setenv("WAR_ROOM_HOOK", hook.url)
        rb = _runbook(tmp_path, f'sns_topic_arn = "{TOPIC}"\nwebhook_env = "WAR_ROOM_HOOK"\n')
        engine = _engine(aws, rb, tmp_path / "j.toml")
        notifier = attach(engine, engine.runbook.notify)  # type: ignore[arg-type]
        waits = _to_the_end(engine)
        # a second `run` at the end, and the same wait met again, send nothing new
        assert engine.run(confirm=OK).status == "done"
        assert waits == ["gate gate-phase2", "step handover"]
        received = hook.wait_for(3)
        assert notifier.close() == []  # nothing left unsent

    sqs = aws.client("sqs")
    queue = sqs.get_queue_url(QueueName=inbox_name(TOPIC))["QueueUrl"]
    bodies = drain(sqs, queue)
    expected = ["wait-gate-gate-phase2-r0-a0", "wait-step-handover-r0-a0", "finished"]
    assert event_ids(bodies) == expected  # exactly the events that happened, once each
    assert [r["body"]["event_id"] for r in received] == expected
    gate_wait = json.loads(bodies[0].split("\n", 1)[1])
    assert (
        bodies[0].split("\n", 1)[0] == "[mini] waiting at gate gate-phase2: Go/No-Go before Phase 2"
    )
    assert gate_wait["commands"] == [
        "runbook tick gate-phase2 team-ready --by NAME",
        "runbook decide gate-phase2 --go --by NAME",
    ]
    assert received[1]["body"]["commands"] == ["runbook ack handover --by NAME"]
    assert received[1]["body"]["text"].startswith("[mini] waiting at step handover")

    journal = JournalStore(tmp_path / "j.toml").load()
    assert (journal.notifications.sent, journal.notifications.failed) == (6, 0)
    assert {(d.event_id, d.target) for d in journal.notifications.recent} == {
        (e, t) for e in expected for t in ("sns", "webhook")
    }
    # the token: in the webhook's path only; nowhere the run writes or shows
    assert all(r["path"].endswith(TOKEN) for r in received)
    shown = [
        *bodies,
        *(json.dumps(r["body"]) for r in received),
        (tmp_path / "j.toml").read_text(),
        engine.store.log_path.read_text(),
        "\n".join(render_status(engine.snapshot())),
        render_report(engine, None),
        engine.snapshot().model_dump_json(),
    ]
    assert not [text for text in shown if TOKEN in text or "hook-token" in text]


def test_a_hanging_webhook_never_holds_the_run_and_its_failures_are_reported(
    aws: Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notify = 'webhook_env = "WAR_ROOM_HOOK"\ntimeout_seconds = 0.5\nattempts = 2\n'
    rb = _runbook(tmp_path, notify)
    with webhook() as answering:  # the same run against an endpoint that answers: the baseline
        monkeypatch.setenv("WAR_ROOM_HOOK", answering.url)
        baseline = _engine(aws, rb, tmp_path / "base.toml")
        attach(baseline, baseline.runbook.notify)  # type: ignore[arg-type]
        began = time.monotonic()
        _to_the_end(baseline)
        baseline_seconds = time.monotonic() - began
        baseline.close()

    with webhook(hanging=True) as hook:
        monkeypatch.setenv("WAR_ROOM_HOOK", hook.url)
        engine = _engine(aws, rb, tmp_path / "j.toml", seed=False)
        notifier = attach(engine, engine.runbook.notify)  # type: ignore[arg-type]
        began = time.monotonic()
        waits = _to_the_end(engine)
        run_seconds = time.monotonic() - began
        assert waits == ["gate gate-phase2", "step handover"]
        assert hook.wait_for(1)  # the endpoint holds a request open...
        assert not hook.release.is_set()  # ...and still holds it: the run went on without it
        closed_at = time.monotonic()
        given_up = notifier.close(timeout=10.0)  # each: 2 attempts of 0.5 s, 0.5 s apart
        close_seconds = time.monotonic() - closed_at
    print(f"run {run_seconds:.2f}s (baseline {baseline_seconds:.2f}s), close {close_seconds:.2f}s")
    assert close_seconds < 6.0  # 3 notices x (2 x 0.5 s + 0.5 s): capped, never the hang
    assert run_seconds < baseline_seconds + 2.0  # "on time": what the endpoint costs is not here

    journal = JournalStore(tmp_path / "j.toml").load()
    failures = journal.notifications.failures()
    assert journal.notifications.sent == 0
    assert {d.event_id for d in failures} == {
        "wait-gate-gate-phase2-r0-a0",
        "wait-step-handover-r0-a0",
        "finished",
    }
    assert given_up == []  # each one failed within its cap, none was cut off at exit
    assert all(d.error == "webhook: timed out" and d.attempts == 2 for d in failures)
    assert all(TOKEN not in d.error for d in failures)
    snapshot = engine.snapshot()
    assert snapshot.notifications.status_line == "notifications failing"
    status = "\n".join(render_status(snapshot))
    assert "· notifications failing" in status.splitlines()[1]
    report = render_report(engine, None)
    assert "## Notifications" in report and "Sent 0, failed 3." in report
    assert "- " in report and "wait-gate-gate-phase2-r0-a0 (wait) to webhook" in report
    assert TOKEN not in report and TOKEN not in (tmp_path / "j.toml").read_text()


def test_a_notice_journaled_as_sent_is_not_sent_again_after_a_restart(
    aws: Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with webhook() as hook:
        monkeypatch.setenv("WAR_ROOM_HOOK", hook.url)
        rb = _runbook(tmp_path, 'webhook_env = "WAR_ROOM_HOOK"\n')
        engine = _engine(aws, rb, tmp_path / "j.toml")
        attach(engine, engine.runbook.notify)  # type: ignore[arg-type]
        assert engine.run().waiting == NodeRef.gate("gate-phase2")
        hook.wait_for(1)
        engine.close()
        # the next `runbook run` (a new process) stops at the same gate: no second message
        again = Engine(
            engine.runbook,
            JournalStore(tmp_path / "j.toml").load(),
            JournalStore(tmp_path / "j.toml"),
            aws.client,
            engine.options,
        )
        attach(again, again.runbook.notify)  # type: ignore[arg-type]
        assert again.run().waiting == NodeRef.gate("gate-phase2")
        again.close()
        assert [r["body"]["event_id"] for r in hook.received] == ["wait-gate-gate-phase2-r0-a0"]


def test_iam_policy_grants_publish_on_that_topic_only(tmp_path: Path) -> None:
    from engine.aws.iam_policy import allows, build_policy

    rb = load_runbook(
        _runbook(tmp_path, f'sns_topic_arn = "{TOPIC}"\nwebhook_ssm_parameter = "/war-room/hook"\n')
    ).runbook
    policy = build_policy(rb, "123456789012")
    assert allows(policy, "sns:Publish", TOPIC)
    assert not allows(policy, "sns:Publish", TOPIC + "-other")
    publish = [s for s in policy["Statement"] if "sns:Publish" in s["Action"]]
    assert publish == [
        {
            "Sid": "PublishTheRunsNotifications",
            "Effect": "Allow",
            "Action": ["sns:Publish"],
            "Resource": [TOPIC],
        }
    ]
    assert allows(
        policy, "ssm:GetParameter", "arn:aws:ssm:us-east-1:123456789012:parameter/war-room/hook"
    )


def test_what_is_still_queued_when_the_engine_stops_is_journaled_failed(
    aws: Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with webhook(hanging=True) as hook:
        monkeypatch.setenv("WAR_ROOM_HOOK", hook.url)
        rb = _runbook(tmp_path, 'webhook_env = "WAR_ROOM_HOOK"\ntimeout_seconds = 30\n')
        engine = _engine(aws, rb, tmp_path / "j.toml")
        notifier = attach(engine, engine.runbook.notify)  # type: ignore[arg-type]
        assert engine.run().waiting == NodeRef.gate("gate-phase2")
        hook.wait_for(1)  # being sent, and the endpoint does not answer
        began = time.monotonic()
        given_up = notifier.close(timeout=0.2)
        assert time.monotonic() - began < 2.0
    assert given_up == ["wait-gate-gate-phase2-r0-a0"]
    failed = JournalStore(tmp_path / "j.toml").load().notifications.failures()
    assert [(d.event_id, d.error) for d in failed] == [
        ("wait-gate-gate-phase2-r0-a0", "not sent before the engine stopped")
    ]


def test_a_webhook_kept_in_ssm_is_read_from_there(aws: Connection, tmp_path: Path) -> None:
    with webhook() as hook:
        aws.client("ssm").put_parameter(
            Name="/war-room/webhook", Value=hook.url, Type="SecureString", Overwrite=True
        )
        rb = _runbook(tmp_path, 'webhook_ssm_parameter = "/war-room/webhook"\n')
        engine = _engine(aws, rb, tmp_path / "j.toml")
        attach(engine, engine.runbook.notify)  # type: ignore[arg-type]
        assert engine.run().waiting == NodeRef.gate("gate-phase2")
        assert hook.wait_for(1)[0]["body"]["event_id"] == "wait-gate-gate-phase2-r0-a0"
        engine.close()
    assert TOKEN not in (tmp_path / "j.toml").read_text()


def test_a_webhook_whose_variable_is_unset_fails_in_one_line_and_the_run_goes_on(
    aws: Connection, tmp_path: Path
) -> None:
    rb = _runbook(tmp_path, 'webhook_env = "NOT_SET_ANYWHERE"\nattempts = 1\n')
    engine = _engine(aws, rb, tmp_path / "j.toml")
    attach(engine, engine.runbook.notify)  # type: ignore[arg-type]
    assert engine.run().waiting == NodeRef.gate("gate-phase2")
    engine.close()
    failed = JournalStore(tmp_path / "j.toml").load().notifications.failures()
    assert [d.error for d in failed] == [
        "webhook: environment variable NOT_SET_ANYWHERE is not set"
    ]


def test_a_failed_step_is_told_once_with_what_to_do(
    aws: Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with webhook() as hook:
        monkeypatch.setenv("WAR_ROOM_HOOK", hook.url)
        rb = _runbook(tmp_path, 'webhook_env = "WAR_ROOM_HOOK"\n')
        engine = _engine(aws, rb, tmp_path / "j.toml")
        aws.client("dynamodb").delete_table(TableName="mini-other")  # the backup cannot be made
        attach(engine, engine.runbook.notify)  # type: ignore[arg-type]
        outcome = engine.run()
        assert outcome.status == "failed" and outcome.failed_step == "backup-tables"
        body = hook.wait_for(1)[0]["body"]
        engine.close()
    assert body["event_id"] == "failed-backup-tables-a1-r0" and body["kind"] == "failed"
    assert body["text"] == "[mini] step backup-tables failed"
    assert "mini-other" in body["error"] and body["commands"] == ["runbook run", "runbook status"]
