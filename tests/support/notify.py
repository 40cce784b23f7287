"""Notifications under test: a local webhook (http.server) that records what it is sent, or
hangs until released; the rehearsal inbox (the SQS queue subscribed to the topic); a
notifier attached to an Engine as the workspace attaches it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from engine.run.engine import Engine
from engine.run.notifier import Notifier
from engine.runbook.model import NotifySpec

TOKEN = "hook-token-s3cr3t-4711"  # the secret a webhook URL carries


@dataclass
class Webhook:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    release: threading.Event = field(default_factory=threading.Event)  # a hanging one answers
    hanging: bool = False

    def wait_for(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout=timeout)
            return list(self.received)


@contextmanager
def webhook(hanging: bool = False) -> Iterator[Webhook]:
    """A webhook on 127.0.0.1 whose path carries TOKEN. `hanging`: it reads each request and
    answers nothing until `release` is set (a stuck endpoint), never a sleep."""
    hook = Webhook(url="", hanging=hanging)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with hook.arrived:
                hook.received.append({"path": self.path, "body": body})
                hook.arrived.notify_all()
            if hook.hanging:
                hook.release.wait()
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/{TOKEN}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        hook.release.set()
        server.shutdown()
        server.server_close()


def attach(engine: Engine, spec: NotifySpec) -> Notifier:
    """As the workspace does for a driving engine (engine/session/workspace.py)."""
    notifier = Notifier(engine, spec)
    engine.subscribe(notifier)
    engine.on_close.append(notifier.close)
    return notifier


def drain(sqs: Any, queue_url: str) -> list[str]:
    """Every message in the queue, its body as published (raw delivery)."""
    out: list[str] = []
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        if not messages:
            return out
        for message in messages:
            out.append(message["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def event_ids(bodies: list[str]) -> list[str]:
    """Each notice's event id, from the JSON line after its one-line summary."""
    return [json.loads(body.split("\n", 1)[1])["event_id"] for body in bodies]
