"""Commands for a detached engine, through its control socket: pause | resume | stop |
throttle | watch, and a rollback it runs."""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

from engine.cli.codes import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from engine.cli.driving import open_workspace
from engine.cli.journal_follow import follow_journal
from engine.cli.outcome import finish_outcome, resume_hint
from engine.cli.output import Printer, say, say_error
from engine.cli.remote import control_line, need_remote, operator_of
from engine.cli.terminal import make_confirm
from engine.control.client import EngineGone, RemoteEngine, WatchMessage
from engine.core.events import LogLine, Progress
from engine.core.outcome import BadRequest, Outcome
from engine.state.lock import is_locked


def cmd_pause(args: argparse.Namespace) -> int:
    say(need_remote(args).pause(operator_of(args)))
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    say(need_remote(args).resume(operator_of(args), consent=args.yes))
    return EXIT_OK


STOP_WAIT_SECONDS = 30.0


def cmd_stop(args: argparse.Namespace) -> int:

    remote = need_remote(args)
    try:
        say(remote.stop(operator_of(args)))
    except EngineGone:  # an idle engine (at a gate) exits before its answer can be sent
        say("stopping: the engine is exiting")
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    journal = open_workspace(args).journal_path
    while is_locked(journal) is not None:  # the engine lets go of the lock as it exits
        if time.monotonic() > deadline:
            say_error(
                f"runbook: the engine has not exited after {STOP_WAIT_SECONDS:g} s; it may be "
                "blocked in a call (`runbook status` shows where)"
            )
            return EXIT_FAILED
        time.sleep(0.1)  # polling the lock file: an observable condition with a deadline
    say(f"engine stopped; checkpoint saved. Resume with: {resume_hint(args)} [--detach]")
    return EXIT_OK


def throttle_settings(args: argparse.Namespace) -> dict[str, float | int | None]:
    """The throttle flags the operator gave (an absent flag changes nothing)."""
    names = ("rate", "in_flight", "segments", "capacity_share")
    return {k: getattr(args, k) for k in names if hasattr(args, k)}


def cmd_throttle(args: argparse.Namespace) -> int:
    settings = throttle_settings(args)
    if not settings:
        raise BadRequest(
            "throttle: give --rate, --in-flight, --segments and/or --capacity-share "
            "(a value or off)"
        )
    say("throttle: " + need_remote(args).throttle(operator_of(args), **settings))
    return EXIT_OK


def remote_rollback(args: argparse.Namespace, remote: RemoteEngine) -> int:
    for step in remote.preview_rollback(args.phase):
        say(f"{step['title']}:")
        for call in step["calls"]:
            say(f"    {call}")
    if args.preview:
        return EXIT_OK
    rollback = open_workspace(args).loaded.runbook.rollback_for(args.phase)
    consent = make_confirm(args.yes)
    if rollback is not None and rollback.destructive and not consent(rollback.title, args.phase):
        declined = Outcome("declined", message="rollback not confirmed; nothing was changed")
        return finish_outcome(declined, args)
    status, message = remote.rollback(args.phase, args.by or operator_of(args))
    return finish_outcome(Outcome(status, message=message), args)  # type: ignore[arg-type]


def _step_summary(status: dict[str, Any]) -> str:
    steps = status.get("steps", [])
    done = sum(1 for s in steps if s.get("status") == "done")
    running = next((s["id"] for s in steps if s.get("status") == "running"), None)
    waiting = status.get("waiting")
    line = f"run: {done}/{len(steps)} steps done"
    if running:
        line += f"; running {running}"
    if waiting:
        line += f"; waiting at {waiting['kind']} {waiting['id']}"
    return line


def cmd_watch(args: argparse.Namespace) -> int:
    """A headless follower of a detached engine (the console attaches later the same way)."""
    ws = open_workspace(args)
    if getattr(args, "remote", None) is None and ws.remote is not None:
        return follow_journal(ws, say, threading.Event())  # a run in S3, followed from afar
    remote = need_remote(args)
    printer = Printer(say)
    shown: dict[str, str] = {}
    ended: dict[str, str] = {}

    def changed(kind: str, line: str) -> None:
        if shown.get(kind) != line:
            shown[kind] = line
            say(line)

    def on(msg: WatchMessage) -> None:
        data = msg.data
        if msg.type == "progress":
            printer(
                Progress(
                    data["step"],
                    data["table"],
                    data["done"],
                    data["total"],
                    data.get("rate") or 0.0,
                    data.get("eta"),
                    capacity=data.get("capacity"),
                )
            )
        elif msg.type == "log":
            printer(LogLine(data["step"], data["level"], data["message"], data.get("at", "")))
        elif msg.type == "control":
            changed("control", control_line(data))
        elif msg.type in ("snapshot", "status"):
            changed("status", _step_summary(data))
        elif msg.type == "end":
            ended.update(data)

    subscription = remote.subscribe(on)
    try:
        subscription.ended.wait()
    except KeyboardInterrupt:
        subscription.close()
        return EXIT_OK
    if not ended:
        say_error("runbook: the engine went away without saying so; `runbook status` shows where")
        return EXIT_BAD_INPUT
    say(f"engine ended: {ended.get('outcome')} {ended.get('message', '')}".rstrip())
    return EXIT_OK
