"""A stop ends botocore's retry backoff (issue 12: a stop is honoured within 2 s even under
heavy throttling): the client's retry handler waits on the engine's stop event."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from engine.aws.target import TargetSpec, identify
from engine.core.clock import Interrupted
from engine.plan.loader import default_runbook_path, load_runbook
from engine.run.core import EngineOptions
from engine.run.engine import Engine
from engine.session import journals
from engine.state.journal import JournalStore
from tests.support.write_path import throttling

TABLE = "retry-stop"


def make_table(ddb: Any) -> None:
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def put(ddb: Any) -> None:
    ddb.put_item(TableName=TABLE, Item={"id": {"S": "a"}})


def test_without_a_stop_retries_are_botocores(aws) -> None:
    ddb = aws.client("dynamodb")
    make_table(ddb)
    sent = throttling(ddb, every=2)  # every second attempt is throttled
    put(ddb)  # attempt 1 goes through
    put(ddb)  # attempt 2 is throttled, botocore's retry (attempt 3) goes through
    assert sent[0] == 3
    got = ddb.get_item(TableName=TABLE, Key={"id": {"S": "a"}})
    assert got["Item"]["id"]["S"] == "a"


def throttled_with_stop(aws: Any) -> tuple[Any, threading.Event, list[int]]:
    """A client whose every PutItem is throttled, its backoff bound to a fresh stop event."""
    ddb = aws.client("dynamodb")
    make_table(ddb)
    stop = threading.Event()
    aws.stop_retries_on(stop)
    return ddb, stop, throttling(ddb, every=1)


def test_a_stop_ends_the_backoff_at_once(aws) -> None:
    ddb, stop, sent = throttled_with_stop(aws)
    stop.set()
    with pytest.raises(Interrupted):
        put(ddb)
    assert sent[0] == 1  # no second attempt once stopped


def test_a_stop_during_a_backoff_unwinds_within_a_second(aws) -> None:
    ddb, stop, sent = throttled_with_stop(aws)
    waiting = threading.Event()

    def note_backoff(**_: Any) -> None:  # after the handlers: a backoff is about to start
        waiting.set()

    ddb.meta.events.register("needs-retry.dynamodb.PutItem", note_backoff)
    outcome: list[BaseException] = []
    worker = threading.Thread(target=lambda: _catch(outcome, ddb))
    worker.start()
    assert waiting.wait(10)
    stopped = time.monotonic()
    stop.set()
    worker.join(5)
    assert not worker.is_alive() and time.monotonic() - stopped < 1.0
    assert isinstance(outcome[0], Interrupted) and sent[0] <= 2


def _catch(outcome: list[BaseException], ddb: Any) -> None:
    try:
        put(ddb)
    except BaseException as exc:  # handed to the test thread
        outcome.append(exc)


def test_the_engine_stop_reaches_the_clients(aws, tmp_path: Path) -> None:
    loaded = load_runbook(default_runbook_path())
    journal = journals.new_journal(loaded, identify(TargetSpec(), aws, "w"), "alice")
    store = JournalStore(tmp_path / "journal.toml")
    engine = Engine(loaded.runbook, journal, store, aws.client, EngineOptions(operator="alice"))
    ddb = aws.client("dynamodb")
    make_table(ddb)
    throttling(ddb, every=1)
    engine.request_stop()
    with pytest.raises(Interrupted):
        put(ddb)
