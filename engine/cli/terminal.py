"""Talking with the operator's terminal: consent prompts, and stopping on signals or its loss."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from typing import Any

from engine.cli.output import say, say_error, silence_terminal
from engine.run.engine import Engine


class NeedsTerminal(Exception):
    """A prompt was needed, but there is no TTY and no --yes."""


def lost_terminal_stops(engine: Engine) -> Callable[[str], None]:
    """Printer output: when the terminal is lost the run checkpoints and stops (exit 130)."""

    def out(line: str) -> None:
        if not say(line) and not engine.stop_requested:
            engine.log("the terminal went away: checkpointing and stopping", "warning")
            engine.request_stop()

    return out


def make_confirm(
    assume_yes: bool, notes: Callable[[], tuple[str, ...]] | None = None
) -> Callable[[str, str], bool]:
    """`notes`: what the operator must know before consenting (incomplete archives)."""

    def confirm(what: str, token: str) -> bool:
        for note in notes() if notes else ():
            say_error(f"note: {note}")
        if assume_yes:
            return True
        if not sys.stdin.isatty():
            raise NeedsTerminal(
                f"'{what}' needs confirmation; no terminal to ask on. Re-run with --yes to consent."
            )
        try:
            answer = input(
                f"{what} is destructive. Type {token} to confirm (anything else stops): "
            )
        except EOFError:  # end of input is no consent: declined, nothing was changed
            raise NeedsTerminal(
                f"no answer to the confirmation of '{what}' (end of input): declined, "
                "nothing was changed"
            ) from None
        return answer.strip() == token

    return confirm


def install_stop_handlers(engine: Engine) -> None:
    def handler(signum: int, _frame: Any) -> None:
        # never raises (the terminal may be gone): a write error here would land in the action
        engine.request_stop()
        if signum == signal.SIGHUP:
            silence_terminal()
        else:
            say_error(f"received {signal.Signals(signum).name}: checkpointing and stopping...")

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)
