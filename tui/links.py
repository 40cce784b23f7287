"""How the console's driver (tui/driver.py) reaches its engine's work and events.

`LocalLink`: the engine runs here, `Engine.run` / `Engine.rollback` in one thread worker at a
time, and its events are handed to the UI thread. `RemoteLink`: a detached engine (`runbook
attach`): events (snapshots, progress, log lines) come from its watcher stream, which a reader
thread hands to the UI thread; whether it works, waits or is paused comes from its `control`
messages; work is started with socket requests from daemon threads.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from engine.control.client import EngineGone, RemoteEngine, Subscription, WatchMessage, as_event
from engine.core.commands import ControlState
from engine.core.events import Event, LogLine, SnapshotChanged
from engine.core.outcome import BadRequest, CommandRefused, NotAllowed, Outcome
from engine.core.views import RunSnapshot
from engine.run.engine import Engine
from tui.driver import Driver
from tui.messages import ControlChanged, EngineLeft, WorkEnded, wrap


class LocalLink:
    remote = False  # the engine runs in this process: quitting stops it

    def __init__(self, driver: Driver, engine: Engine) -> None:
        self.driver = driver
        self.engine = engine
        self.attached = False
        driver.link = self

    @classmethod
    def make_driver(cls, app: Any, engine: Engine) -> Driver:
        """The console's driver of an engine in this process."""
        options = engine.options
        driver = Driver(app, engine, options.operator, options.real_account)
        cls(driver, engine)
        return driver

    def attach(self) -> None:
        self.engine.subscribe(self._from_engine)
        self.attached = True

    def detach(self) -> None:
        if self.attached:
            self.engine.unsubscribe(self._from_engine)
            self.attached = False

    def _from_engine(self, event: Event) -> None:
        """Any thread: hand over to the UI thread (post_message is thread-safe)."""
        self.driver.app.post_message(wrap(event))

    def snapshot(self) -> RunSnapshot:
        """Only while idle (the engine thread mutates the journal while it runs)."""
        return self.engine.snapshot()

    def start_run(self, approved: str | None) -> None:
        self._start(
            "engine", lambda: self.engine.run(pause_before_destructive=True, approved=approved)
        )

    def start_rollback(self, phase: str) -> None:
        by = self.driver.operator
        self._start("rollback", lambda: self.engine.rollback(phase, by, lambda w, t: True))

    def _start(self, group: str, call: Callable[[], Outcome]) -> None:
        driver = self.driver
        driver.busy = True
        driver.idle.clear()

        def work() -> None:
            outcome, error = None, None
            try:
                outcome = call()
            except Exception as exc:  # shown to the operator; the journal holds what was done
                error = exc
            finally:
                driver.idle.set()
            driver.app.post_message(WorkEnded(group, outcome, error))

        driver.app.run_worker(work, thread=True, exclusive=True, group=group, exit_on_error=False)

    def ended(self) -> None:
        self.driver.busy = False

    def stop(self) -> None:
        self.engine.request_stop()

    def pause(self) -> None:
        """A local engine has no pause (a stop checkpoints it)."""

    def throttle(self, **settings: int | float | None) -> str:
        raise CommandRefused("only a detached engine takes a throttle")


class RemoteLink:
    remote = True  # the engine is another process: leaving this console never stops it

    def __init__(self, driver: Driver, engine: RemoteEngine, snapshot: RunSnapshot) -> None:
        self.driver = driver
        self.engine = engine
        self.latest = snapshot
        self.left = False  # its stream ended: it exited, or died
        self._goodbye = False
        self._closing = False
        self._subscription: Subscription | None = None
        driver.link = self

    @classmethod
    def make_driver(
        cls, app: Any, engine: RemoteEngine, operator: str, real_account: bool
    ) -> Driver:
        """The console's driver of a detached engine (its state comes with its stream)."""
        answer = engine.status()
        driver = Driver(app, engine, operator, real_account, pid=answer.control.pid)
        cls(driver, engine, answer.snapshot)
        return driver

    # ---- events -----------------------------------------------------------------------------

    def attach(self) -> None:
        self._subscription = self.engine.subscribe(self._on_message)
        threading.Thread(target=self._watch_stream, name="attach-stream", daemon=True).start()

    def detach(self) -> None:
        self._closing = True
        if self._subscription is not None:
            self._subscription.close()

    def _watch_stream(self) -> None:
        assert self._subscription is not None
        self._subscription.ended.wait()
        if not self._goodbye and not self._closing:  # no `end`: the engine died
            self.left = True
            self.driver.app.post_message(EngineLeft(None))

    def _on_message(self, msg: WatchMessage) -> None:
        """The reader thread: hand everything over to the UI thread. A message this console
        cannot read (another version's) is skipped; the stream goes on."""
        try:
            self._hand_over(msg)
        except (KeyError, TypeError, ValueError) as exc:
            self.driver.app.post_message(wrap(LogLine(None, "warning", f"unreadable: {exc}", "")))

    def _hand_over(self, msg: WatchMessage) -> None:
        app = self.driver.app
        if msg.type == "control":
            self._control(ControlState.model_validate(msg.data))
        elif msg.type == "end":
            self._goodbye = self.left = True
            data = msg.data or {}
            app.post_message(EngineLeft(str(data.get("outcome")), data.get("message", "")))
        elif (event := as_event(msg)) is not None:
            if isinstance(event, SnapshotChanged):
                self.latest = event.snapshot
            app.post_message(wrap(event))

    def _control(self, control: ControlState) -> None:
        driver = self.driver
        was_busy, before = driver.busy, driver.activity
        driver.controlled(control)
        if was_busy and not driver.busy:  # a job ended: say how, as a local worker's end does
            last = control.last
            status = last.status if last else "waiting"
            if status == "declined":  # stopped short of a destructive step: ask, then go on
                status = "paused"
            group = "rollback" if before == "rolling back" else "engine"
            outcome = Outcome(status, message=last.message if last else "")  # type: ignore[arg-type]
            driver.app.post_message(WorkEnded(group, outcome, None))
        driver.app.post_message(ControlChanged(control))

    # ---- work ---------------------------------------------------------------------------------

    def snapshot(self) -> RunSnapshot:
        return self.latest

    def _send(self, what: str, call: Callable[[], object]) -> None:
        """A request from its own daemon thread (a rollback answers only when done, and
        quitting must never wait for it); a refusal or a gone engine is one notification."""
        app = self.driver.app

        def work() -> None:
            try:
                call()
            except (CommandRefused, BadRequest, NotAllowed, EngineGone, OSError) as exc:
                with contextlib.suppress(RuntimeError):  # the console has left meanwhile
                    app.call_from_thread(app.notify, f"{what}: {exc}", severity="error", timeout=10)

        threading.Thread(target=work, name=f"attach-{what}", daemon=True).start()

    def start_run(self, approved: str | None) -> None:
        """Go on from where the engine stands (after a pause, a failure, a wait); `approved`:
        the destructive step the operator has just confirmed, and that step only (the engine
        stops and asks again at the next one, as a local engine does)."""
        by = self.driver.operator
        self._send("resume", lambda: self.engine.resume(by, approve=approved))

    def start_rollback(self, phase: str) -> None:
        by = self.driver.operator
        self._send("rollback", lambda: self.engine.rollback(phase, by))

    def ended(self) -> None:
        """A job's end is the engine's to say (its control messages)."""

    def stop(self) -> None:
        by = self.driver.operator
        self._send("stop", lambda: self.engine.stop(by))

    def pause(self) -> None:
        by = self.driver.operator
        self._send("pause", lambda: self.engine.pause(by))

    def throttle(self, **settings: int | float | None) -> str:
        try:
            return self.engine.throttle(self.driver.operator, **settings)
        except EngineGone:
            raise CommandRefused("the detached engine is gone") from None
