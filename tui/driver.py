"""What drives the engine for the console: its worker thread, stops, and the hand-over of its
events to the UI thread. A read-only console follows another process's journal instead; an
attached console drives a detached engine through its control socket (`RemoteDriver`).
Drivers offer the same commands, so the screens do not know which one they have.

The UI never reads the engine's live journal while a worker runs: it renders the snapshots the
engine sends (`SnapshotChanged`). Commands (tick, ack) are called only while the engine is idle.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.control.client import EngineGone, RemoteEngine, RemoteError, WatchMessage, as_event
from engine.core.context import RateMeter, eta_seconds
from engine.core.events import Event, LogLine, SnapshotChanged
from engine.core.outcome import CommandRefused, Outcome
from engine.core.views import RunSnapshot
from engine.run.engine import Engine
from engine.state.lock import Holder, is_locked
from tui.messages import ControlChanged, EngineLeft, WorkEnded, wrap

if TYPE_CHECKING:
    from textual.app import App
    from textual.clock import Clock


class EngineDriver:
    """Runs `Engine.run` / `Engine.rollback` in one thread worker at a time."""

    remote = False  # the engine runs in this process: quitting stops it
    paused = False

    def __init__(self, app: App[Any], engine: Engine) -> None:
        self.app = app
        self.engine = engine
        self.busy = False  # a worker was started and has not ended yet
        self.idle = threading.Event()
        self.idle.set()
        self.ui_thread: int | None = None
        self.attached = False

    # ---- events -----------------------------------------------------------------------------

    def attach(self) -> None:
        self.ui_thread = threading.get_ident()
        self.engine.subscribe(self._from_engine)
        self.attached = True

    def detach(self) -> None:
        if self.attached:
            self.engine.unsubscribe(self._from_engine)
            self.attached = False

    def _from_engine(self, event: Event) -> None:
        """Any thread: hand over to the UI thread (post_message is thread-safe)."""
        self.app.post_message(wrap(event))

    # ---- work --------------------------------------------------------------------------------

    def snapshot(self) -> RunSnapshot:
        """Only while idle (the engine thread mutates the journal while it runs)."""
        return self.engine.snapshot()

    def start_run(self, approved: str | None) -> None:
        """Run until a human is needed, stopping short of a destructive step other than
        `approved` (which the operator has just confirmed)."""
        self._start(
            "engine",
            lambda: self.engine.run(pause_before_destructive=True, approved=approved),
        )

    def start_rollback(self, phase: str) -> None:
        by = self.engine.options.operator
        # the operator confirmed in the modal already
        self._start("rollback", lambda: self.engine.rollback(phase, by, lambda w, t: True))

    def _start(self, group: str, call: Callable[[], Outcome]) -> None:
        self.busy = True
        self.idle.clear()

        def work() -> None:
            outcome, error = None, None
            try:
                outcome = call()
            except Exception as exc:  # shown to the operator; the journal holds what was done
                error = exc
            finally:
                self.idle.set()
            self.app.post_message(WorkEnded(group, outcome, error))

        self.app.run_worker(work, thread=True, exclusive=True, group=group, exit_on_error=False)

    def ended(self) -> None:
        self.busy = False

    def stop(self) -> None:
        """Thread-safe: the running action checkpoints at its next check and unwinds."""
        self.engine.request_stop()

    # ---- commands the screens give (offered while the engine is idle) ----------------------

    @property
    def operator(self) -> str:
        return self.engine.options.operator

    @property
    def clock_changeable(self) -> bool:
        return not self.engine.options.real_account  # a real account stays at real time

    def tick(self, gate_id: str, item_id: str) -> None:
        self.engine.tick(gate_id, item_id, self.operator)

    def untick(self, gate_id: str, item_id: str) -> None:
        self.engine.untick(gate_id, item_id, self.operator)

    def evaluate_gate(self, gate_id: str) -> None:
        self.engine.evaluate_gate(gate_id)  # recorded: the snapshot brings the evidence

    def decide(self, gate_id: str, go: bool, note: str, override: str | None) -> None:
        self.engine.decide(gate_id, go=go, by=self.operator, note=note, override=override)

    def ack(self, step_id: str, note: str) -> None:
        self.engine.ack(step_id, by=self.operator, note=note)

    def preview_rollback(self, phase: str) -> list[tuple[str, list[str]]]:
        return [
            (title, [call.render() for call in calls])
            for title, calls in self.engine.preview_rollback(phase)
        ]

    def set_time_scale(self, scale: float) -> None:
        self.engine.set_time_scale(scale, by=self.operator)  # journaled, then a snapshot


class Follower:
    """Read-only: re-reads the driver's journal; items/s and ETA come from its checkpoints."""

    def __init__(
        self,
        engine: Engine,
        reload: Callable[[Engine], None] | None,
        holder: Holder | None,
        clock: Clock | None,
    ) -> None:
        self.engine = engine
        self.reload = reload
        self.holder = holder
        self.clock = clock
        self.meters: dict[tuple[str, str], RateMeter] = {}

    def snapshot(self) -> RunSnapshot:
        journal = self.engine.journal
        running = [sid for sid, s in journal.steps.items() if s.status == "running"]
        rates: dict[tuple[str, str], tuple[float | None, float | None]] = {}
        for step_id in running:
            for table, prog in journal.steps[step_id].progress.items():
                meter = self.meters.setdefault((step_id, table), RateMeter())
                now = self.clock.time if self.clock else time.monotonic()
                rate = meter.add(now, prog.done)
                rates[(step_id, table)] = (rate, eta_seconds(prog.done, prog.total, rate))
        driver = f"{self.holder.user}@{self.holder.host}" if self.holder else None
        return self.engine.snapshot(
            driver=driver, active=self.holder is not None and bool(running), rates=rates
        )

    def follow(self) -> RunSnapshot:
        """Raises what re-reading raises (a journal mid-replace): the caller keeps its view.
        Without `reload` the view is frozen (tests): the holder given stays."""
        if self.reload is not None:
            self.reload(self.engine)
            self.holder = is_locked(self.engine.store.path)  # the driver may have left
        return self.snapshot()


# the detached engine's activities while it works (engine/control/driver.py)
WORKING = ("running", "rolling back", "starting", "stopping")


class RemoteDriver:
    """Drives a detached engine through its control socket (`runbook attach`).

    Events (snapshots, progress, log lines) come from its watcher stream, which a reader thread
    hands to the UI thread; whether it works, waits or is paused comes from its `control`
    messages. Commands are socket requests; those that may take a while go from thread
    workers. The engine is another process: leaving this console never stops it.
    """

    remote = True

    def __init__(
        self,
        app: App[Any],
        engine: RemoteEngine,
        operator: str,
        real_account: bool,
        snapshot: RunSnapshot,
        pid: int,
    ) -> None:
        self.app = app
        self.engine = engine
        self._operator = operator
        self.real_account = real_account
        self.latest = snapshot
        self.pid = pid
        self.busy = False  # the engine works (a run or a rollback), as it last said
        self.pause_state: str | None = None  # "pausing" | "paused" | None
        self.throttle_state: dict[str, Any] = {}  # rate, in_flight, text: as the engine said
        self.activity = "idle"
        self.idle = threading.Event()
        self.idle.set()
        self.left = False  # its stream ended: it exited, or died
        self._goodbye = False
        self._closing = False
        self._subscription: Any = None

    @property
    def paused(self) -> bool:
        return self.pause_state is not None

    # ---- events -----------------------------------------------------------------------------

    def attach(self) -> None:
        self._subscription = self.engine.subscribe(self._on_message)
        threading.Thread(target=self._watch_stream, name="attach-stream", daemon=True).start()

    def detach(self) -> None:
        self._closing = True
        if self._subscription is not None:
            self._subscription.close()

    def _watch_stream(self) -> None:
        self._subscription.ended.wait()
        if not self._goodbye and not self._closing:  # no `end`: the engine died
            self.left = True
            self.app.post_message(EngineLeft(None))

    def _on_message(self, msg: WatchMessage) -> None:
        """The reader thread: hand everything over to the UI thread. A message this console
        cannot read (another version's) is skipped; the stream goes on."""
        try:
            self._hand_over(msg)
        except (KeyError, TypeError, ValueError) as exc:
            self.app.post_message(wrap(LogLine(None, "warning", f"unreadable: {exc}", "")))

    def _hand_over(self, msg: WatchMessage) -> None:
        if msg.type == "control":
            self._control(msg.data)
        elif msg.type == "end":
            self._goodbye = self.left = True
            data = msg.data or {}
            self.app.post_message(EngineLeft(str(data.get("outcome")), data.get("message", "")))
        elif (event := as_event(msg)) is not None:
            if isinstance(event, SnapshotChanged):
                self.latest = event.snapshot
            self.app.post_message(wrap(event))

    def _control(self, control: dict[str, Any]) -> None:
        was_busy, before = self.busy, self.activity
        self.activity = str(control.get("activity"))
        self.pause_state = control.get("pause")
        self.throttle_state = dict(control.get("throttle") or {})
        self.busy = self.activity in WORKING
        (self.idle.clear if self.busy else self.idle.set)()
        if was_busy and not self.busy:  # a job ended: say how, as a local worker's end does
            last = control.get("last") or {}
            status = last.get("status") or "waiting"
            if status == "declined":  # stopped short of a destructive step: ask, then go on
                status = "paused"
            group = "rollback" if before == "rolling back" else "engine"
            outcome = Outcome(status, message=last.get("message", ""))  # type: ignore[arg-type]
            self.app.post_message(WorkEnded(group, outcome, None))
        self.app.post_message(ControlChanged(control))

    # ---- work --------------------------------------------------------------------------------

    def snapshot(self) -> RunSnapshot:
        return self.latest

    def _send(self, what: str, call: Callable[[], object]) -> None:
        """A request from its own daemon thread (a rollback answers only when done, and
        quitting must never wait for it); a refusal or a gone engine is one notification."""

        def work() -> None:
            try:
                call()
            except (RemoteError, EngineGone, OSError) as exc:
                with contextlib.suppress(RuntimeError):  # the console has left meanwhile
                    self.app.call_from_thread(
                        self.app.notify, f"{what}: {exc}", severity="error", timeout=10
                    )

        threading.Thread(target=work, name=f"attach-{what}", daemon=True).start()

    def start_run(self, approved: str | None) -> None:
        """Go on from where the engine stands (after a pause, a failure, a wait); `approved`:
        the destructive step the operator has just confirmed, and that step only (the engine
        stops and asks again at the next one, as a local engine does)."""
        self._send("resume", lambda: self.engine.resume(self.operator, approve=approved))

    def start_rollback(self, phase: str) -> None:
        self._send("rollback", lambda: self.engine.rollback(phase, self.operator))

    def ended(self) -> None:
        """A job's end is the engine's to say (its control messages)."""

    def stop(self) -> None:
        self._send("stop", lambda: self.engine.stop(self.operator))

    def pause(self) -> None:
        self._send("pause", lambda: self.engine.pause(self.operator))

    # ---- commands the screens give -------------------------------------------------------------

    @property
    def operator(self) -> str:
        return self._operator

    @property
    def clock_changeable(self) -> bool:
        return not self.real_account

    def _ask(self, call: Callable[[], Any]) -> Any:
        """A quick request; the engine's refusal as the local engine's CommandRefused."""
        try:
            return call()
        except RemoteError as exc:
            raise CommandRefused(str(exc).removeprefix("refused: ")) from None
        except EngineGone:
            raise CommandRefused("the detached engine is gone") from None

    def tick(self, gate_id: str, item_id: str) -> None:
        self._ask(lambda: self.engine.tick(gate_id, item_id, self.operator))

    def untick(self, gate_id: str, item_id: str) -> None:
        self._ask(lambda: self.engine.untick(gate_id, item_id, self.operator))

    def evaluate_gate(self, gate_id: str) -> None:
        self._ask(lambda: self.engine.evaluate_gate(gate_id))

    def decide(self, gate_id: str, go: bool, note: str, override: str | None) -> None:
        self._ask(
            lambda: self.engine.decide(gate_id, go, self.operator, note=note, override=override)
        )

    def ack(self, step_id: str, note: str) -> None:
        self._ask(lambda: self.engine.ack(step_id, self.operator, note=note))

    def preview_rollback(self, phase: str) -> list[tuple[str, list[str]]]:
        steps = self._ask(lambda: self.engine.preview_rollback(phase))
        return [(step["title"], list(step["calls"])) for step in steps]

    def set_time_scale(self, scale: float) -> None:
        self._ask(lambda: self.engine.set_time_scale(scale, self.operator))

    def throttle(self, **settings: int | float | None) -> str:
        """`in_flight` and/or `rate` (None: the runbook's value / no limit); journaled by the
        engine; what it now applies, in words."""
        return str(self._ask(lambda: self.engine.throttle(self.operator, **settings)))
