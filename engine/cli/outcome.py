"""How a command's end is told: the outcome line, its exit code, and how to resume."""

from __future__ import annotations

import argparse

from engine.cli.codes import OUTCOME_EXIT
from engine.cli.output import _err, _print
from engine.core.outcome import Outcome


def _resume_hint(args: argparse.Namespace) -> str:
    parts = ["runbook", "run"]
    for flag in ("runbook", "journal", "endpoint_url", "profile", "region", "mapping_overrides"):
        value = getattr(args, flag, None)
        if value:
            parts += [f"--{flag.replace('_', '-')}", str(value)]
    return " ".join(parts)


def _finish(outcome: Outcome, args: argparse.Namespace) -> int:
    if outcome.status == "interrupted":
        _err(f"interrupted; checkpoint saved. Resume with: {_resume_hint(args)}")
    elif outcome.status in ("waiting", "paused") and outcome.waiting:
        kind, node = outcome.waiting.kind, outcome.waiting.id
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
