"""The console's App: wires the engine, its driver (or a follower, read-only) and the screens.

It holds the run's latest snapshot (a reactive the screens watch), the log entries, and the
ways out (quit, hang-up). It holds no migration logic, and renders nothing itself: the main
screen (`tui/screens/main.py`) does. Everything here can also be done with the headless CLI.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from textual import events, on
from textual.app import App
from textual.binding import Binding
from textual.clock import Clock
from textual.geometry import Size
from textual.reactive import reactive
from textual.screen import Screen

from engine.control.client import RemoteEngine
from engine.core.views import RunSnapshot
from engine.run.engine import Engine
from engine.state.lock import Holder
from tui.driver import Driver
from tui.follower import Follower
from tui.links import LocalLink, RemoteLink
from tui.logbook import LogEntry, read_new, read_tail
from tui.messages import ControlChanged, EngineEvent, EngineLeft, SnapshotEvent, WorkEnded, wrap
from tui.screens.keys import KeysScreen, key_lines, key_rows
from tui.screens.log import LogScreen
from tui.screens.main import MainScreen
from tui.screens.main_view import MIN_HEIGHT, MIN_WIDTH
from tui.screens.resume import ResumeScreen, resume_summary
from tui.textual_patches import toasts_always_expire

Now = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RunbookApp(App[int]):
    CSS_PATH = "styles/app.tcss"
    TITLE = "runbook-console"
    ENABLE_COMMAND_PALETTE = False
    view_only = False  # ViewOnlyApp (`runbook serve`) sets it: a watcher who can never drive
    BINDINGS = [Binding("question_mark", "toggle_keys", "Keys", show=False)]

    snapshot: reactive[RunSnapshot] = reactive(None, always_update=True)  # type: ignore[arg-type]

    def __init__(
        self,
        engine: Engine,
        read_only: bool = False,
        holder: Holder | None = None,
        now: Now = _utcnow,
        follow: Callable[[Engine], None] | None = None,
        greet: bool = True,
        clock: Clock | None = None,
        quit_timeout: float = 5.0,
        remote: RemoteEngine | None = None,
        handoff: Callable[[], RemoteEngine] | None = None,
        who_drives: Callable[[], Holder | None] | None = None,
    ) -> None:
        """`remote`: attach to that detached engine. `engine` is then a read-only one over the
        journal (the runbook, the operator, the log's path); commands go through the socket.
        `handoff`: lets go of the journal and starts a detached engine on it (the D key).
        `who_drives`: read-only, who holds the run's lock now (tui/follower.py)."""
        toasts_always_expire()  # a Textual race would otherwise freeze the console
        super().__init__()
        self.engine = engine
        self.read_only = read_only
        self.holder = holder
        self.now = now
        self.ui_clock = clock  # frozen in tests: progress bars and their timing
        self.quit_timeout = quit_timeout
        self.greet = greet
        self.follow = follow
        self.driver: Driver = LocalLink.make_driver(self, engine)
        self.who_drives = who_drives
        self.follower = Follower(engine, follow, holder, clock, who_drives) if read_only else None
        self.engine_left = ""  # attached: how the detached engine ended (said on quit)
        self.handoff = handoff
        self.handing_over = False
        self.log_entries: deque[LogEntry] = deque(maxlen=5000)
        self.log_offset = 0
        self.quitting = False
        self.ui_loop: asyncio.AbstractEventLoop | None = None
        if remote is not None:
            self.greet = False  # the engine runs on its own; the status line says where
            self.set_reactive(RunbookApp.snapshot, self._attach_remote(remote))
            return
        # before any worker runs, reading the journal here is safe
        self.set_reactive(
            RunbookApp.snapshot, self.follower.snapshot() if self.follower else engine.snapshot()
        )
        if not read_only:
            self.driver.attach()

    # ---- wiring -----------------------------------------------------------------------------

    @property
    def main(self) -> MainScreen:
        return self.screen_stack[0]  # type: ignore[return-value]

    @property
    def running(self) -> bool:
        return self.driver.busy

    @property
    def idle(self) -> threading.Event:
        """Set while no engine worker runs (a hang-up waits on it before leaving)."""
        return self.driver.idle

    def get_default_screen(self) -> Screen:
        return MainScreen()

    def on_mount(self) -> None:
        self.ui_loop = asyncio.get_running_loop()
        entries, self.log_offset = read_tail(self.engine.store.log_path)
        self.log_entries.extend(entries)
        self._check_size()
        if self.read_only:
            self.set_interval(1.0, self.follow_driver)
        if self.greet:
            self._greet()

    def _has_history(self) -> bool:
        snap = self.snapshot
        return any(s.journal_status != "pending" for s in snap.steps) or any(
            g.decision or any(i.by for i in g.items) for g in snap.gates
        )

    def _greet(self) -> None:
        snap = self.snapshot
        if not self._has_history():
            return
        greeting = ResumeScreen(
            resume_summary(snap, self.read_only),
            self.read_only,
            snap.waiting.kind if snap.waiting else None,
            snap.proposed_rollback,
        )
        self.push_screen(greeting, self._after_greeting)

    def _after_greeting(self, command: str | None) -> None:
        main = self.main
        if command == "run":
            waiting = self.snapshot.waiting
            if waiting and waiting.kind == "gate":
                main.action_gate()
            else:
                main.action_run()
        elif command == "rollback":
            main.action_rollback()
        elif command == "ack":
            main.action_ack()

    def on_resize(self, event: events.Resize) -> None:
        self._check_size(event.size)  # self.size may still be the old one here

    def _check_size(self, size: Size | None = None) -> None:
        size = size or self.size
        if not self.screen_stack:
            return  # closing
        # the main screen, even while a modal is on top of it
        self.main.set_too_small(size.width < MIN_WIDTH or size.height < MIN_HEIGHT)

    # ---- engine events (UI thread) ------------------------------------------------------------

    @on(EngineEvent)
    def _on_engine_event(self, message: EngineEvent) -> None:
        if isinstance(message, SnapshotEvent):
            self.snapshot = message.snapshot  # the screens watch it
        elif message.forwarded or not self.screen_stack:
            return  # handled; or the app is closing and its screens are gone
        else:  # the main screen's queue: handled once it is composed, in order
            self.main.post_message(wrap(message.event, forwarded=True))

    @on(WorkEnded)
    def _on_work_ended(self, message: WorkEnded) -> None:
        self.driver.ended()
        if self.quitting or not self.screen_stack:  # leaving: the checkpoint is on disk
            self.exit(0)
            return
        if not self.read_only:
            self.snapshot = self.driver.snapshot()  # the worker has ended: idle, safe to read
        if self.main.ready:
            self.main.work_ended(message)

    def _attach_remote(self, remote: RemoteEngine) -> RunSnapshot:
        """Drive the detached engine behind `remote` from now on; its snapshot, live."""
        options = self.engine.options
        self.driver = RemoteLink.make_driver(self, remote, options.operator, options.real_account)
        self.driver.attach()
        return self.driver.snapshot()  # the engine's own view

    def hand_over(self) -> None:
        """D: the run goes on in a detached engine (it outlives this console and its
        terminal); this console attaches to it. Only while the local engine is idle."""
        if self.handoff is None or self.driver.remote or self.driver.busy:
            return
        local = self.driver
        local.detach()  # the local engine no longer reports here; it runs nothing now
        local.busy = True  # no key may start it while the journal changes hands
        self.handing_over = True
        handoff = self.handoff

        def work() -> None:
            try:
                remote = handoff()
            except Exception as exc:  # the journal is ours again (or the reason says why not)
                self.call_from_thread(self._handoff_failed, local, exc)
                return
            self.call_from_thread(self._handed_over, remote)

        self.run_worker(work, thread=True, group="handoff", exit_on_error=False)

    def _handed_over(self, remote: RemoteEngine) -> None:
        self.handing_over = False
        try:
            self.snapshot = self._attach_remote(remote)
        except Exception as exc:
            self.notify(f"the detached engine did not answer: {exc}", severity="error")
            return
        self.notify(
            f"the run is handed to a detached engine (pid {self.driver.pid}); "
            "it runs on when you quit (q)",
            timeout=10,
        )
        self.main.refresh_view()

    def _handoff_failed(self, local: Driver, exc: Exception) -> None:
        self.handing_over = False
        local.busy = False
        local.attach()
        self.notify(f"not handed over: {exc}", severity="error", timeout=15)
        self.main.refresh_view()

    @on(ControlChanged)
    def _on_control(self, message: ControlChanged) -> None:
        if self.screen_stack and self.main.ready:
            self.main.refresh_view()  # running, idle, paused: the status line says which

    @on(EngineLeft)
    def _on_engine_left(self, message: EngineLeft) -> None:
        """The detached engine exited (or died): say so in one line, then follow its journal
        read-only, as a viewer does (`runbook` resumes from the checkpoint)."""
        pid = self.driver.pid or "?"
        if message.outcome is None:
            line = f"the detached engine (pid {pid}) is gone; `runbook` resumes from its checkpoint"
        else:
            line = f"the detached engine (pid {pid}) ended: {message.outcome} {message.message}"
        self.engine_left = line.rstrip()
        self.notify(self.engine_left, severity="warning", timeout=30)
        self.driver.busy = False
        self.driver.idle.set()
        self.read_only = True
        self.holder = None
        self.follower = Follower(self.engine, self.follow, None, self.ui_clock, self.who_drives)
        self.follow_driver()
        self.set_interval(1.0, self.follow_driver)

    def add_log_entry(self, entry: LogEntry) -> None:
        self.log_entries.append(entry)
        if not self.screen_stack:
            return  # closing: the entry is kept, no screen is left to show it
        self.main.add_entry(entry)
        if isinstance(self.screen, LogScreen):
            self.screen.add_entry(entry)

    def follow_driver(self) -> None:
        """Read-only: follow the driver's journal and log as they change."""
        assert self.follower is not None
        try:
            snapshot = self.follower.follow()
        except Exception as exc:  # a journal mid-replace or gone: keep the last view
            self.notify(f"cannot re-read the journal: {exc}", severity="warning")
            return
        self.holder = self.follower.holder
        entries, self.log_offset = read_new(self.engine.store.log_path, self.log_offset)
        for entry in entries:
            self.add_log_entry(entry)
        self.snapshot = snapshot

    # ---- keys of every screen -------------------------------------------------------------------

    def action_toggle_keys(self) -> None:
        if isinstance(self.screen, KeysScreen):
            return
        if self.screen is self.main:
            self.main.show_keys()
            return
        # the keys of what the operator looks at: the gate screen's, the log's
        owner = self.screen
        rows = key_rows(owner.BINDINGS, lambda action: owner.check_action(action, ()))
        self.push_screen(KeysScreen(key_lines(rows)))

    # ---- ways out -------------------------------------------------------------------------------

    async def action_quit(self) -> None:
        """ctrl+q goes the same careful way as q."""
        self.action_quit_console()

    def action_quit_console(self) -> None:
        if self.driver.remote:  # another process: it runs on without us
            self.exit(0, message=self.farewell())
            return
        if not self.driver.busy:
            self.exit(0)
            return
        self.main.ask_quit()

    def stop_then_exit(self) -> None:
        """Stop at the next checkpoint; exit when the worker ends (or after quit_timeout)."""
        self.quitting = True
        self.driver.stop()
        self.notify("checkpointing before quitting…")
        if not self.driver.busy:
            self.exit(0)
            return
        self.set_timer(self.quit_timeout, self._exit_anyway)

    def _exit_anyway(self) -> None:
        if self.driver.busy:  # a call stuck on the network: the journal holds the last checkpoint
            self.exit(0, message="the engine did not stop in time; its last checkpoint stands")

    def farewell(self) -> str:
        """Leaving an attached console: what becomes of the engine."""
        if self.driver.remote and not self.engine_left:
            return (
                f"left the console; the detached engine (pid {self.driver.pid}) runs on. "
                "`runbook` attaches again, `runbook stop` stops it"
            )
        return self.engine_left

    def hangup(self) -> None:
        """SIGHUP (SSH dropped) or SIGTERM: checkpoint, then leave. UI thread. An attached
        console just leaves: the engine is another process."""
        if self.driver.remote:
            self.exit(0, message=self.farewell())
            return
        self.stop_then_exit()

    def on_unmount(self) -> None:
        self.driver.detach()  # a finished console no longer listens
