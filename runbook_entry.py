"""The `runbook` command: with a sub-command, the headless CLI (`engine.cli`); without one, the
console (`tui`). It sits above both, so the engine never imports the console."""

from __future__ import annotations

import argparse
import sys

from engine import cli


def console(args: argparse.Namespace) -> int:
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


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv, console=console)


if __name__ == "__main__":
    sys.exit(main())
