"""The notifier: subscribed to an engine, it turns events into notices (engine/run/notices.py)
and delivers them from its own thread, so a slow, failing or hanging endpoint never holds a
step: a bounded queue, a timeout per request, a capped number of attempts per target, and each
outcome journaled by event id (sent, or failed with a one-line reason; engine/state/journal.py
`Notifications` keeps counts and the latest outcomes).

Delivery is at least once: a notice journaled as sent is never sent again (its event id), one
not yet journaled is sent again when the same event happens again (a `run` that stops at the
same gate). When the engine stops, `close` waits a bounded time for what is queued, then
journals the rest as failed.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from engine.aws.notify_send import DeliveryFailed, post_webhook, publish_sns, webhook_url
from engine.core.events import Alert, Event, RollbackChanged, RunStopped, StepStarted
from engine.run.core import RunCore
from engine.run.notices import Notice, NoticeMaker
from engine.runbook.model import NotifySpec
from engine.state.journal import Delivery, now

QUEUE_SIZE = 64  # notices waiting to be sent; beyond it a notice is journaled failed at once
BACKOFF_SECONDS = (0.5, 1.0, 2.0, 4.0)  # between attempts at one target (capped)
CLOSE_SECONDS = 10.0  # how long a stopping engine waits for queued notices
_EVENTS = (Alert, RollbackChanged, RunStopped, StepStarted)


class Notifier:
    def __init__(self, core: RunCore, spec: NotifySpec, queue_size: int = QUEUE_SIZE) -> None:
        self.core = core
        self.spec = spec
        self.maker = NoticeMaker(core.runbook)
        self._queue: queue.Queue[Notice] = queue.Queue(maxsize=queue_size)
        self._open: dict[str, Notice] = {}  # queued or being sent, by event id
        self._lock = threading.Condition()
        self._closed = threading.Event()  # no more journal writes from the worker
        self._thread: threading.Thread | None = None
        self._url: str | None = None  # the webhook's, in memory only

    # ---- the engine's thread ------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        """A subscriber: cheap, never blocks (the queue is bounded; a full one fails fast)."""
        if not isinstance(event, _EVENTS) or self._closed.is_set():
            return
        journal = self.core.journal
        snapshot = self.core.snapshot() if isinstance(event, RunStopped) else None
        notice = self.maker.notice(event, journal, snapshot)  # type: ignore[arg-type]
        if notice is None:
            return
        wanted = [t for t in self.targets() if not self._delivered(notice.event_id, t)]
        if not wanted:
            return
        with self._lock:
            if notice.event_id in self._open:
                return
            try:
                self._queue.put_nowait(notice)
            except queue.Full:
                for target in wanted:
                    self._record(notice, target, "failed", 0, "the notification queue is full")
                return
            self._open[notice.event_id] = notice
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="notifier", daemon=True)
                self._thread.start()

    def targets(self) -> list[str]:
        out = ["sns"] if self.spec.sns_topic_arn else []
        if self.spec.webhook_env or self.spec.webhook_ssm_parameter:
            out.append("webhook")
        return out

    # ---- the notifier's thread ----------------------------------------------------------------

    def _work(self) -> None:
        while not self._closed.is_set():
            try:
                notice = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            for target in self.targets():
                if not self._delivered(notice.event_id, target):
                    self._deliver(notice, target)
            with self._lock:
                self._open.pop(notice.event_id, None)
                self._lock.notify_all()

    def _deliver(self, notice: Notice, target: str) -> None:
        error = ""
        for attempt in range(1, self.spec.attempts + 1):
            if self._closed.is_set():
                return  # close() journals it
            try:
                self._send(notice, target)
            except DeliveryFailed as exc:
                error = str(exc)
            else:
                self._record(notice, target, "sent", attempt)
                return
            if attempt < self.spec.attempts:
                pause = BACKOFF_SECONDS[min(attempt - 1, len(BACKOFF_SECONDS) - 1)]
                self._closed.wait(pause)  # a backoff that a close cuts short
        self._record(notice, target, "failed", self.spec.attempts, error)
        self.core.log(f"notification {notice.event_id} to {target} failed: {error}", "warning")

    def _send(self, notice: Notice, target: str) -> None:
        clients: Callable[[str], Any] = self.core.clients
        if target == "sns":
            assert self.spec.sns_topic_arn is not None
            publish_sns(clients("sns"), self.spec.sns_topic_arn, notice.line, notice.body)
            return
        if self._url is None:
            ssm = clients("ssm") if self.spec.webhook_ssm_parameter else None
            self._url = webhook_url(self.spec.webhook_env, self.spec.webhook_ssm_parameter, ssm)
        post_webhook(self._url, notice.line, notice.body, self.spec.timeout_seconds)

    # ---- the journal ----------------------------------------------------------------------------

    def _delivered(self, event_id: str, target: str) -> bool:
        with self.core.io_lock:
            return self.core.journal.notifications.delivered(event_id, target)

    def _record(
        self, notice: Notice, target: str, status: str, attempts: int, error: str = ""
    ) -> None:
        delivery = Delivery(
            event_id=notice.event_id,
            kind=notice.kind,
            target=target,  # type: ignore[arg-type]
            status=status,  # type: ignore[arg-type]
            attempts=attempts,
            at=now(),
            error=error,
        )
        with self.core.io_lock:
            if self._closed.is_set():
                return
            self.core.journal.notifications.record(delivery)
            if not self.core.busy:  # a running engine journals it at its next checkpoint
                self.core.save()

    def close(self, timeout: float = CLOSE_SECONDS) -> list[str]:
        """Wait up to `timeout` for queued notices, then journal what is left as failed (and
        stop the worker). Returns the event ids given up."""
        with self._lock:
            self._lock.wait_for(lambda: not self._open, timeout=timeout)
            left = list(self._open.values())
        for notice in left:
            for target in self.targets():
                if not self._delivered(notice.event_id, target):
                    self._record(notice, target, "failed", 0, "not sent before the engine stopped")
        self._closed.set()
        if left:
            self.core.save()
        return [n.event_id for n in left]
