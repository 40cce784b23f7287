"""How a command's end is told: the outcome line, its exit code, and how to resume."""

from __future__ import annotations

import argparse

from engine.cli.codes import OUTCOME_EXIT
from engine.cli.output import say, say_error
from engine.core.outcome import Outcome
from engine.core.views import RunSnapshot
from engine.run.status_text import gate_lines


def resume_hint(args: argparse.Namespace) -> str:
    parts = ["runbook", "run"]
    flags = ("runbook", "journal", "state_profile", "endpoint_url", "profile", "region")
    flags = (*flags, "read_timeout")
    for flag in (*flags, "mapping_overrides"):
        value = getattr(args, flag, None)
        if value:
            parts += [f"--{flag.replace('_', '-')}", str(value)]
    return " ".join(parts)


def finish_outcome(
    outcome: Outcome, args: argparse.Namespace, snapshot: RunSnapshot | None = None
) -> int:
    if outcome.status == "interrupted":
        say_error(f"interrupted; checkpoint saved. Resume with: {resume_hint(args)}")
    elif outcome.status in ("waiting", "paused") and outcome.waiting:
        kind, node = outcome.waiting.kind, outcome.waiting.id
        if kind == "gate" and snapshot is not None:  # the commands that answer it, as status
            say(f"waiting at gate {node}: {outcome.message}. Next:")
            for line in gate_lines(snapshot.gate(node)):
                say(line)
        else:
            how = (
                f"runbook decide {node} --go|--no-go --by NAME"
                if kind == "gate"
                else f"runbook ack {node} --by NAME"
            )
            say(f"waiting at {kind} {node}: {outcome.message}. Next: {how}")
    elif outcome.message:
        (say_error if outcome.status != "done" else say)(outcome.message)
    return OUTCOME_EXIT[outcome.status]


def target_flags(args: argparse.Namespace) -> str:
    return resume_hint(args).removeprefix("runbook run").strip()
