"""`run --detach`: spawning the engine as its own process, and that process itself."""

from __future__ import annotations

import os
import signal
from typing import Any

from engine.cli.codes import EXIT_OK, OUTCOME_EXIT
from engine.cli.context import CliContext
from engine.cli.output import say, say_error
from engine.control.job_loop import DetachedRun
from engine.control.paths import socket_path
from engine.control.server import ControlServer
from engine.run.engine import Engine
from engine.session.detach import DetachFailed, signal_ready, spawn


def spawn_detached(ctx: CliContext) -> int:
    try:
        started = spawn(ctx.argv)
    except DetachFailed as exc:
        for line in exc.lines:
            say_error(line)
        return exc.code
    flags = ctx.target_flags()
    say(f"engine started: pid {started.pid}; it runs on without this terminal")
    say(f"  journal {started.journal}; log {started.log}")
    say(f"  control socket {started.socket} (you only)")
    say(f"  follow: runbook watch {flags}".rstrip())
    say(f"  control: runbook pause|resume|stop|throttle {flags}".rstrip())
    return EXIT_OK


def run_detached_child(ctx: CliContext) -> int:
    """The engine process itself (`run --detach` started it in its own session)."""
    ws = ctx.workspace()
    path = socket_path(ws.journal_path)

    def body(engine: Engine) -> int:
        args = ctx.args
        detached = DetachedRun(engine, args.until, args.only, consent=args.yes, socket=str(path))
        if ctx.throttle:  # before the first step: no item moves unthrottled
            engine.log(f"started throttled: {detached.throttle(ctx.operator, **ctx.throttle)}")
        server = ControlServer(path, ws.journal_path, detached)
        server.start()

        def on_signal(_signum: int, _frame: Any) -> None:
            detached.signal_stop()  # only sets events: safe in a signal handler

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # no terminal to lose
        engine.log(f"detached engine started (pid {os.getpid()}); control socket {path}")
        signal_ready(
            {
                "pid": os.getpid(),
                "socket": str(path),
                "journal": str(ws.journal_path),
                "log": str(engine.store.log_path),
            }
        )
        try:
            outcome = detached.serve()
        finally:
            server.close()
        engine.log(f"detached engine exits: {outcome.status} {outcome.message}".rstrip())
        return OUTCOME_EXIT[outcome.status]

    ws.acquire("run --detach")
    try:
        return body(ws.open(create=True))
    finally:
        ws.release()
