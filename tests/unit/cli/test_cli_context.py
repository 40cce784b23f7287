"""The CLI's typed context: the flags every command takes, --by and the throttle flags given,
read once from argparse; the command told to resume names the same run."""

from __future__ import annotations

from pathlib import Path

from engine.cli.context import CliContext
from engine.cli.parser import build_parser


def _context(*argv: str) -> CliContext:
    return CliContext.of(build_parser().parse_args(list(argv)), list(argv))


def test_the_target_flags_before_or_after_the_command_are_one_typed_value() -> None:
    ctx = _context("--journal", "j.toml", "tick", "gate-1", "item", "--by", "al", "--region",
                   "eu-west-2")  # fmt: skip
    assert ctx.command == "tick" and ctx.by == "al" and ctx.remote is None
    assert ctx.target.journal == Path("j.toml") and ctx.target.region == "eu-west-2"
    assert ctx.args.gate == "gate-1" and ctx.throttle == {} and not ctx.detached_child
    assert ctx.resume_hint() == "runbook run --journal j.toml --region eu-west-2"
    assert ctx.target_flags() == "--journal j.toml --region eu-west-2"


def test_a_command_without_by_acts_as_the_operator() -> None:
    ctx = _context("run", "--operator", "bo")
    assert ctx.by is None and ctx.operator == "bo"
    assert ctx.resume_hint() == "runbook run"


def test_only_the_throttle_flags_given_are_in_the_context() -> None:
    assert _context("throttle", "--in-flight", "off").throttle == {"in_flight": None}
    ctx = _context("run", "--detach", "--rate", "50", "--segments", "2")
    assert ctx.throttle == {"rate": 50.0, "segments": 2}
