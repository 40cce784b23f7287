"""The CLI's entry: parse, find a detached engine, dispatch to a command, and make sure every
error ends as one line and an exit code (no traceback ever reaches the operator)."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable

from engine.cli.codes import EXIT_INTERRUPTED, EXIT_OK
from engine.cli.context import CliContext
from engine.cli.detached_commands import cmd_pause, cmd_resume, cmd_stop, cmd_throttle, cmd_watch
from engine.cli.errors import KNOWN_ERRORS, known_error_exit, unexpected_error_exit
from engine.cli.local_commands import (
    cmd_ack,
    cmd_check,
    cmd_console,
    cmd_decide,
    cmd_iam_policy,
    cmd_plan,
    cmd_report,
    cmd_rollback,
    cmd_run,
    cmd_status,
    cmd_tick,
)
from engine.cli.output import silence_terminal
from engine.cli.parser import build_parser
from engine.cli.remote import probe_engine
from engine.cli.simulate import cmd_simulate
from engine.cli.state_commands import cmd_state

COMMANDS: dict[str | None, Callable[[CliContext], int]] = {
    None: cmd_console,
    "check": cmd_check,
    "plan": cmd_plan,
    "run": cmd_run,
    "status": cmd_status,
    "tick": cmd_tick,
    "ack": cmd_ack,
    "decide": cmd_decide,
    "rollback": cmd_rollback,
    "report": cmd_report,
    "simulate": cmd_simulate,
    "iam-policy": cmd_iam_policy,
    "state": cmd_state,
    "pause": cmd_pause,
    "resume": cmd_resume,
    "stop": cmd_stop,
    "throttle": cmd_throttle,
    "watch": cmd_watch,
    "attach": cmd_watch,  # without the console (engine.cli run directly): headless
    "serve": cmd_console,
    "view": cmd_console,
}
# they open the console (tui), via runbook_entry
CONSOLE_COMMANDS = (None, "serve", "view", "attach")


def _leave_abandoned_calls() -> None:
    """A stop abandons a call blocked on a hung endpoint (its thread keeps waiting): the
    checkpoint is saved and the lock released, so exit now instead of joining that thread."""
    if any(t.is_alive() and not t.daemon for t in threading.enumerate()[1:]):
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(EXIT_INTERRUPTED)


def main(
    argv: list[str] | None = None,
    console: Callable[[CliContext], int] | None = None,
) -> int:
    """`console`: what opens the console when no command is given (see runbook_entry)."""
    # artifacts hold full item copies: everything this process creates is the operator's only
    os.umask(0o077)
    try:
        args = build_parser().parse_args(argv)
    except BrokenPipeError:  # --help | head
        silence_terminal()
        return EXIT_OK
    # the child's arguments for a detach: the same
    ctx = CliContext.of(args, list(sys.argv[1:] if argv is None else argv))
    try:
        code = _main(ctx, console)
        if code == EXIT_INTERRUPTED and argv is None:
            _leave_abandoned_calls()
        return code
    except BrokenPipeError:  # `runbook plan | head`: the reader has all it wants
        silence_terminal()
        return EXIT_OK
    except (KeyboardInterrupt, Exception) as exc:  # no traceback ever reaches the operator
        return unexpected_error_exit(ctx, exc)


def _main(ctx: CliContext, console: Callable[[CliContext], int] | None = None) -> int:
    try:
        probe_engine(ctx)
        if ctx.command in CONSOLE_COMMANDS and console is not None:
            return console(ctx)  # the console lives above the engine (runbook_entry)
        return COMMANDS[ctx.command](ctx)
    except KNOWN_ERRORS as exc:
        return known_error_exit(exc)
