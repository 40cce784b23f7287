"""The `runbook` command: with a sub-command, the headless CLI (`engine.cli`); without one, the
console (`tui`). It sits above both, so the engine never imports the console."""

from __future__ import annotations

import argparse
import sys

from engine import cli


def console(args: argparse.Namespace) -> int:
    if args.command in ("serve", "view"):  # the read-only console for browsers (tui/serve.py)
        return served_console(args)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        cli._err(
            "runbook: the console needs a terminal (no TTY here). Use the headless commands: "
            "runbook run | status | decide | ack | tick | rollback | report"
        )
        return cli.EXIT_BAD_INPUT
    try:
        from tui.console import run_console
    except ImportError:
        cli._err("runbook: the console is not available in this build; use the headless commands")
        return cli.EXIT_BAD_INPUT
    return run_console(cli._workspace(args))


def served_console(args: argparse.Namespace) -> int:
    try:
        from tui.serve import serve
        from tui.view import run_view
    except ImportError as exc:
        cli._err(f"runbook: {args.command} is not available in this build ({exc})")
        return cli.EXIT_BAD_INPUT
    if args.command == "serve":
        return serve(args, cli._workspace(args))
    return run_view(cli._workspace(args))


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv, console=console)


if __name__ == "__main__":
    sys.exit(main())
