"""Commands for a detached engine, through its control socket: pause | resume | stop |
throttle | watch, and a rollback it runs."""

from __future__ import annotations

import threading
import time
from typing import Any

from engine.cli.codes import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from engine.cli.context import CliContext
from engine.cli.ending import finish_outcome
from engine.cli.journal_follow import follow_journal
from engine.cli.output import Printer, say, say_error
from engine.cli.remote import control_line, need_remote
from engine.cli.terminal import make_confirm
from engine.control.client import EngineGone, RemoteEngine, WatchMessage
from engine.core.commands import ControlState
from engine.core.events import LogLine, Progress
from engine.core.outcome import BadRequest, Outcome
from engine.state.lock import is_locked


def cmd_pause(ctx: CliContext) -> int:
    say(need_remote(ctx).pause(ctx.operator))
    return EXIT_OK


def cmd_resume(ctx: CliContext) -> int:
    say(need_remote(ctx).resume(ctx.operator, consent=ctx.args.yes))
    return EXIT_OK


STOP_WAIT_SECONDS = 30.0


def cmd_stop(ctx: CliContext) -> int:
    remote = need_remote(ctx)
    try:
        say(remote.stop(ctx.operator))
    except EngineGone:  # an idle engine (at a gate) exits before its answer can be sent
        say("stopping: the engine is exiting")
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    journal = ctx.workspace().journal_path
    while is_locked(journal) is not None:  # the engine lets go of the lock as it exits
        if time.monotonic() > deadline:
            say_error(
                f"runbook: the engine has not exited after {STOP_WAIT_SECONDS:g} s; it may be "
                "blocked in a call (`runbook status` shows where)"
            )
            return EXIT_FAILED
        time.sleep(0.1)  # polling the lock file: an observable condition with a deadline
    say(f"engine stopped; checkpoint saved. Resume with: {ctx.resume_hint()} [--detach]")
    return EXIT_OK


def cmd_throttle(ctx: CliContext) -> int:
    if not ctx.throttle:
        raise BadRequest(
            "throttle: give --rate, --in-flight, --segments and/or --capacity-share "
            "(a value or off)"
        )
    say("throttle: " + need_remote(ctx).throttle(ctx.operator, **ctx.throttle))
    return EXIT_OK


def remote_rollback(ctx: CliContext, remote: RemoteEngine) -> int:
    phase = ctx.args.phase
    for line in remote.preview_rollback(phase).lines():
        say(line)
    if ctx.args.preview:
        return EXIT_OK
    rollback = ctx.workspace().loaded.runbook.rollback_for(phase)
    consent = make_confirm(ctx.args.yes)
    if rollback is not None and rollback.destructive and not consent(rollback.title, phase):
        declined = Outcome("declined", message="rollback not confirmed; nothing was changed")
        return finish_outcome(declined, ctx.resume_hint())
    return finish_outcome(remote.rollback(phase, ctx.operator, ctx.caller()), ctx.resume_hint())


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


def cmd_watch(ctx: CliContext) -> int:
    """A headless follower of a detached engine (the console attaches later the same way)."""
    if ctx.remote is None and ctx.workspace().remote is not None:
        return follow_journal(ctx.workspace(), say, threading.Event())  # a run in S3, from afar
    remote = need_remote(ctx)
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
            changed("control", control_line(ControlState.model_validate(data)))
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
