"""How a command's end is told: the outcome line, its exit code, and how to resume."""

from __future__ import annotations

import argparse

from engine.cli.codes import OUTCOME_EXIT
from engine.cli.output import _err, _print
from engine.runner import Outcome
from engine.snapshot import RunSnapshot
from engine.status_text import gate_lines


def _resume_hint(args: argparse.Namespace) -> str:
    parts = ["runbook", "run"]
    flags = ("runbook", "journal", "endpoint_url", "profile", "region", "read_timeout")
    for flag in (*flags, "mapping_overrides"):
        value = getattr(args, flag, None)
        if value:
            parts += [f"--{flag.replace('_', '-')}", str(value)]
    return " ".join(parts)


def _finish(outcome: Outcome, args: argparse.Namespace, snapshot: RunSnapshot | None = None) -> int:
    if outcome.status == "interrupted":
        _err(f"interrupted; checkpoint saved. Resume with: {_resume_hint(args)}")
    elif outcome.status in ("waiting", "paused") and outcome.waiting:
        kind, node = outcome.waiting.kind, outcome.waiting.id
        if kind == "gate" and snapshot is not None:  # the commands that answer it, as status
            _print(f"waiting at gate {node}: {outcome.message}. Next:")
            for line in gate_lines(snapshot.gate(node)):
                _print(line)
        else:
            how = (
                f"runbook decide {node} --go|--no-go --by NAME"
                if kind == "gate"
                else f"runbook ack {node} --by NAME"
            )
            _print(f"waiting at {kind} {node}: {outcome.message}. Next: {how}")
    elif outcome.message:
        (_err if outcome.status != "done" else _print)(outcome.message)
    return OUTCOME_EXIT[outcome.status]


def _target_flags(args: argparse.Namespace) -> str:
    return _resume_hint(args).removeprefix("runbook run").strip()
