"""The headless CLI: `runbook <command>`. Exit codes are a contract (see EXIT_*).

Modules: app (entry and dispatch), parser + values (flags, help), output (Printer, _print/_err),
terminal (prompts, signals), outcome (end lines, resume hints), driving (Workspace), errors,
local_commands, remote (finding a detached engine), detached_run, detached_commands.
This file keeps the names others import from `engine.cli` (runbook_entry, tests)."""

from engine.cli.app import COMMANDS, CONSOLE_COMMANDS, main
from engine.cli.codes import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_WAITING,
    OUTCOME_EXIT,
)
from engine.cli.detached_commands import (
    STOP_WAIT_SECONDS,
    cmd_pause,
    cmd_resume,
    cmd_stop,
    cmd_throttle,
    cmd_watch,
)
from engine.cli.driving import _workspace as _workspace
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
    cmd_simulate,
    cmd_status,
    cmd_tick,
)
from engine.cli.output import Printer
from engine.cli.output import _err as _err
from engine.cli.output import _print as _print
from engine.cli.parser import SERVE_HELP, build_parser
from engine.cli.remote import _need_remote as _need_remote
from engine.cli.terminal import NeedsTerminal, make_confirm

__all__ = [
    "COMMANDS",
    "CONSOLE_COMMANDS",
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_LOCKED",
    "EXIT_OK",
    "EXIT_WAITING",
    "OUTCOME_EXIT",
    "SERVE_HELP",
    "STOP_WAIT_SECONDS",
    "NeedsTerminal",
    "Printer",
    "build_parser",
    "cmd_ack",
    "cmd_check",
    "cmd_console",
    "cmd_decide",
    "cmd_iam_policy",
    "cmd_pause",
    "cmd_plan",
    "cmd_report",
    "cmd_resume",
    "cmd_rollback",
    "cmd_run",
    "cmd_simulate",
    "cmd_status",
    "cmd_stop",
    "cmd_throttle",
    "cmd_tick",
    "cmd_watch",
    "main",
    "make_confirm",
]
