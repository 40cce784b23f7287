"""The `runbook` command: with a sub-command, the headless CLI (`engine.cli`); without one, the
console (`tui`). It sits above both, so the engine never imports the console.

The console's modules are imported only when a console starts: Textual and the screens cost
about a second, which every headless command (`status --json` in a script, a cron) would pay."""

from __future__ import annotations

import sys

from engine.cli.app import main as cli_main
from engine.cli.codes import EXIT_BAD_INPUT
from engine.cli.context import CliContext
from engine.cli.detached_commands import cmd_watch
from engine.cli.output import say_error
from engine.cli.remote import need_remote


def console(ctx: CliContext) -> int:
    """No command: the console (attached when a detached engine runs this journal);
    `attach`: the console on the detached engine (headless `watch` without a terminal)."""
    if ctx.command in ("serve", "view"):  # the read-only console for browsers (tui/serve.py)
        return served_console(ctx)
    if ctx.command == "attach":
        need_remote(ctx)  # none runs: one line, exit 2
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            return cmd_watch(ctx)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        say_error(
            "runbook: the console needs a terminal (no TTY here). Use the headless commands: "
            "runbook run | status | decide | ack | tick | rollback | report"
        )
        return EXIT_BAD_INPUT
    try:
        from tui.console import run_console  # noqa: PLC0415 (see the module's docstring)
    except ImportError:
        say_error("runbook: the console is not available in this build; use the headless commands")
        return EXIT_BAD_INPUT
    if ctx.remote is not None:  # a detached engine runs: attach to it
        from tui.console import run_attached  # noqa: PLC0415

        return run_attached(ctx.workspace(), ctx.remote)
    return run_console(ctx.workspace())


def served_console(ctx: CliContext) -> int:
    try:
        from tui.serve import serve  # noqa: PLC0415
        from tui.view import run_view  # noqa: PLC0415
    except ImportError as exc:
        say_error(f"runbook: {ctx.command} is not available in this build ({exc})")
        return EXIT_BAD_INPUT
    if ctx.command == "serve":
        return serve(ctx, ctx.workspace())
    return run_view(ctx.workspace())


def main(argv: list[str] | None = None) -> int:
    return cli_main(argv, console=console)


if __name__ == "__main__":
    sys.exit(main())
