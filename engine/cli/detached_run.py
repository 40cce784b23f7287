"""`run --detach`: spawning the engine as its own process, and that process itself."""

from __future__ import annotations

import argparse
import os
import signal
from typing import Any

from engine.cli.codes import EXIT_OK, OUTCOME_EXIT
from engine.cli.detached_commands import throttle_settings
from engine.cli.driving import open_workspace
from engine.cli.outcome import target_flags
from engine.cli.output import say, say_error
from engine.cli.remote import operator_of
from engine.control.driver import DetachedRun
from engine.control.paths import socket_path
from engine.control.server import ControlServer
from engine.run.engine import Engine
from engine.session.detach import DetachFailed, signal_ready, spawn


def spawn_detached(args: argparse.Namespace) -> int:

    try:
        started = spawn(args.argv)
    except DetachFailed as exc:
        for line in exc.lines:
            say_error(line)
        return exc.code
    flags = target_flags(args)
    say(f"engine started: pid {started.pid}; it runs on without this terminal")
    say(f"  journal {started.journal}; log {started.log}")
    say(f"  control socket {started.socket} (you only)")
    say(f"  follow: runbook watch {flags}".rstrip())
    say(f"  control: runbook pause|resume|stop|throttle {flags}".rstrip())
    return EXIT_OK


def run_detached_child(args: argparse.Namespace) -> int:
    """The engine process itself (`run --detach` started it in its own session)."""

    ws = open_workspace(args)
    path = socket_path(ws.journal_path)

    def body(engine: Engine) -> int:
        driver = DetachedRun(engine, args.until, args.only, consent=args.yes, socket=str(path))
        settings = throttle_settings(args)
        if settings:  # before the first step: no item moves unthrottled
            engine.log(f"started throttled: {driver.throttle(operator_of(args), **settings)}")
        server = ControlServer(path, ws.journal_path, driver)
        server.start()

        def on_signal(_signum: int, _frame: Any) -> None:
            driver.signal_stop()  # only sets events: safe in a signal handler

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
            outcome = driver.serve()
        finally:
            server.close()
        engine.log(f"detached engine exits: {outcome.status} {outcome.message}".rstrip())
        return OUTCOME_EXIT[outcome.status]

    ws.acquire("run --detach")
    try:
        return body(ws.open(create=True))
    finally:
        ws.release()
