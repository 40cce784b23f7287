"""Start the console on a workspace: drive the run, or watch it read-only when another process
holds the journal's lock, or attach to a detached engine (`run_attached`). Signals (SSH
dropped, SIGTERM) checkpoint before leaving; an attached console just leaves."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from engine.control.client import EngineGone, RemoteEngine
from engine.rehearsal.embedded import WorldGone
from engine.session.detach import DetachFailed, spawn
from engine.session.workspace import NoRun
from engine.state.errors import JournalError
from engine.state.lock import LockedError
from tui.app import RunbookApp

HANGUP_GRACE_SECONDS = 3.0  # for Textual to shut down after the engine checkpointed
EXIT_HUNG_UP = 129  # 128 + SIGHUP: the terminal went away


def _run_app(app: RunbookApp, hung_up: threading.Event) -> int:
    """app.run(); after a hang-up, Textual's last writes to the vanished terminal fail (EIO):
    that is the hang-up itself, not an error to log."""
    try:
        app.run()
    except OSError:
        if not hung_up.is_set():
            raise
        return EXIT_HUNG_UP
    return app.return_code or 0


def _leave_after_checkpoint(app: RunbookApp, exited: threading.Event) -> None:
    """After SIGHUP/SIGTERM: once the engine has checkpointed, leave even if Textual's shutdown
    hangs writing to a terminal that is gone (seen with tmux kill-session). The journal is on
    disk and the flock ends with the process."""
    app.idle.wait(app.quit_timeout)
    if not exited.wait(HANGUP_GRACE_SECONDS):
        os._exit(130)


def run_console(workspace: Any) -> int:
    """Open the run for driving (or read-only when another process drives it) and show it."""
    holder = None
    try:
        workspace.acquire("console")
    except LockedError as exc:
        holder = exc.holder
    try:
        try:
            if holder is not None:
                engine = workspace.open_read_only()
            else:
                if workspace.is_embedded and not workspace.store.exists():
                    print(
                        "Starting the embedded rehearsal world (moto on 127.0.0.1)…",
                        file=sys.stderr,
                    )
                engine = workspace.open(create=True)
        except WorldGone as exc:
            try:
                answer = input(
                    f"{exc}.\nStart a fresh rehearsal with a new journal "
                    "(the old journal is kept aside)? [y/N] "
                )
            except EOFError:  # end of input is no consent
                print("\nrunbook: no answer (end of input): declined, nothing was changed",
                      file=sys.stderr)  # fmt: skip
                return 2
            if answer.strip().lower() != "y":
                print("runbook: declined, nothing was changed", file=sys.stderr)
                return 2
            workspace.options.fresh = True
            engine = workspace.open(create=True)
        app = RunbookApp(
            engine,
            read_only=holder is not None,
            holder=holder,
            follow=workspace.reload,
            handoff=None if holder is not None else lambda: hand_over(workspace),
            who_drives=workspace.holder,
        )

        exited, hung_up = threading.Event(), threading.Event()

        def on_signal(signum: int, frame: object) -> None:
            # Textual ignores SIGHUP; without this the engine thread would die mid-batch.
            hung_up.set()
            engine.request_stop()  # thread-safe: the action checkpoints at its next check
            loop = app.ui_loop
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(app.hangup)  # wakes the loop, runs on the UI thread
            threading.Thread(
                target=_leave_after_checkpoint, args=(app, exited), daemon=True
            ).start()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGHUP, signal.SIGTERM)}
        try:
            code = _run_app(app, hung_up)
        finally:
            exited.set()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            engine.request_stop()  # the local engine (a detached one runs on)
            if not app.driver.remote:
                app.idle.wait(5)  # the engine thread checkpoints before the process ends
        return code
    except (JournalError, NoRun) as exc:
        print(f"runbook: {exc}", file=sys.stderr)
        return 2
    finally:
        workspace.release()


def detach_argv(workspace: Any) -> list[str]:
    """`run --detach` on this workspace's journal and target, as the CLI would be called."""
    options = workspace.options
    argv = ["run", "--journal", workspace.journal_arg]
    for flag, value in (
        ("--runbook", options.runbook),
        ("--endpoint-url", options.endpoint_url),
        ("--profile", options.profile),
        ("--region", options.region),
        ("--operator", options.operator),
        ("--mapping-overrides", options.mapping_overrides),
        ("--state-profile", options.state_profile),
        ("--state-kms-key", options.state_kms_key),
    ):
        if value is not None:
            argv += [flag, str(value)]
    if options.accept_runbook_change:
        argv.append("--accept-runbook-change")
    return argv


def hand_over(workspace: Any) -> Any:
    """The console's D key (a thread worker): let go of the journal, start `run --detach` on it
    the way the CLI does, and return its RemoteEngine. If it cannot start, take the journal
    back and raise the engine's own words."""
    workspace.release()
    try:
        started = spawn(detach_argv(workspace))
    except DetachFailed as exc:
        try:
            workspace.acquire("console")
        except LockedError as locked:
            raise RuntimeError(f"{exc.lines[-1]}; and now {locked}") from None
        raise RuntimeError(" ".join(exc.lines)) from None
    return RemoteEngine(Path(started.socket), prove=workspace.sts_proof)


def run_attached(workspace: Any, remote: Any) -> int:
    """The console on a detached engine (`RemoteEngine`): its events come from the control
    socket, the operator's keys become its commands. This process holds no lock and runs no
    step: quitting (or losing the terminal) leaves the engine running."""
    try:
        app = RunbookApp(
            workspace.open_read_only(),
            follow=workspace.reload,
            remote=remote,
            who_drives=workspace.holder,
        )
    except EngineGone as exc:
        print(f"runbook: the detached engine went away ({exc}); `runbook` resumes", file=sys.stderr)
        return 2

    exited, hung_up = threading.Event(), threading.Event()

    def leave_if_stuck() -> None:
        # Textual's shutdown can hang writing to a terminal that is gone; nothing of the run
        # lives in this process, so leave
        if not exited.wait(HANGUP_GRACE_SECONDS):
            os._exit(130)

    def on_signal(signum: int, frame: object) -> None:
        hung_up.set()
        loop = app.ui_loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(app.hangup)
        threading.Thread(target=leave_if_stuck, daemon=True).start()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGHUP, signal.SIGTERM)}
    try:
        return _run_app(app, hung_up)
    finally:
        exited.set()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
