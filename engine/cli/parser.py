"""The argument parser: every command, flag and help text of `runbook`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.cli import values
from engine.cli.codes import EXIT_BAD_INPUT
from engine.session.detach import CHILD_FLAG


class _Parser(argparse.ArgumentParser):
    """argparse, but bad arguments exit 2 with one line (no usage block to scroll past)."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message} (see --help)\n")


def _common(parser: argparse.ArgumentParser, sub: bool = False) -> None:
    """Flags valid before or after the command; a sub-parser must not reset them to None."""
    default: Any = argparse.SUPPRESS if sub else None
    parser.add_argument(
        "--runbook", type=Path, default=default, help="runbook TOML (default: the bundled plan)"
    )
    parser.add_argument(
        "--journal",
        type=values.journal,
        default=default,
        help="journal path, or s3://bucket/prefix/name.toml to keep the run in S3 (default: "
        "under $XDG_STATE_HOME/runbook-console)",
    )
    parser.add_argument(
        "--state-profile",
        default=default,
        help="AWS profile for an S3 journal in another account (default: the target's)",
    )
    parser.add_argument(
        "--state-kms-key",
        default=default,
        metavar="KEY",
        help="encrypt an S3 journal with this KMS key (default: SSE-S3)",
    )
    parser.add_argument(
        "--take-over",
        action="store_true",
        default=argparse.SUPPRESS if sub else False,
        help="take an S3 journal's lock from a holder whose machine is gone (journaled)",
    )
    parser.add_argument(
        "--endpoint-url",
        type=values.endpoint_url,
        default=default,
        help="drive this endpoint (e.g. a moto server)",
    )
    parser.add_argument("--profile", default=default, help="AWS profile: drive a real account")
    parser.add_argument(
        "--region", type=values.region, default=default, help="AWS region: drive a real account"
    )
    parser.add_argument(
        "--read-timeout",
        type=values.read_timeout,
        default=default,
        metavar="SECONDS",
        help="how long each AWS call may take to answer (default: each service's own on AWS, "
        "120 s for an endpoint on this machine or a private network); for a slow emulator",
    )
    parser.add_argument(
        "--operator", default=default, help="your name for the journal (default: $USER)"
    )
    parser.add_argument(
        "--mapping-overrides",
        type=Path,
        default=default,
        help="TOML file resolving users mapped to two companies",
    )
    parser.add_argument(
        "--accept-runbook-change",
        action="store_true",
        default=argparse.SUPPRESS if sub else False,
        help="resume although the runbook file changed since the run began",
    )
    parser.add_argument(
        "--time-scale",
        type=values.time_scale,
        default=argparse.SUPPRESS if sub else None,
        help="divide every wait and watch window by N (rehearsals only); "
        "the run keeps it for later commands",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        default=argparse.SUPPRESS if sub else False,
        help="start a fresh rehearsal (the old journal is kept aside)",
    )


def _control_commands(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """pause | resume | stop | throttle | watch: commands for a detached engine's socket."""
    by_help = "who does it (default: --operator, else $USER)"
    for name, text in (
        ("pause", "detached engine: hold the run at its next checkpoint boundary"),
        ("resume", "detached engine: go on after a pause (or retry / continue where it waits)"),
        ("stop", "detached engine: checkpoint, then exit (`runbook run` resumes later)"),
    ):
        p = add(name, text)
        p.add_argument("--by", type=values.name, help=by_help)
        if name == "resume":
            p.add_argument("--yes", action="store_true", help="consent to destructive steps")
    p = add("throttle", "detached engine: change the write rate / in-flight / segments live")
    throttle_flags(p)
    p.add_argument("--by", type=values.name, help=by_help)
    add("watch", "follow a detached engine live: progress, log, state (read-only)")
    add("attach", "open the console on a detached engine (its keys become its commands)")


def throttle_flags(p: argparse.ArgumentParser, when: str = "") -> None:
    """--rate / --in-flight / --segments, as `throttle` takes them (absent unless given)."""
    p.add_argument(
        "--rate",
        type=values.limit_arg(float),
        default=argparse.SUPPRESS,
        help=f"{when}items per second at most, or off",
    )
    p.add_argument(
        "--in-flight",
        dest="in_flight",
        type=values.limit_arg(int),
        default=argparse.SUPPRESS,
        help=f"{when}concurrent writes, or off (the runbook's)",
    )
    p.add_argument(
        "--segments",
        type=values.limit_arg(int),
        default=argparse.SUPPRESS,
        help=f"{when}parallel-scan segments writing at once, or off",
    )
    p.add_argument(
        "--capacity-share",
        dest="capacity_share",
        type=values.share,
        default=argparse.SUPPRESS,
        help=f"{when}the migration's share of its tables' capacity (0.5 or 50%%), or off "
        "(the runbook's)",
    )


AS_HELP = (
    "rehearsal only: act as this stand-in approver (recorded as not verified, beside your "
    "verified OS user); refused on a real account"
)


def _as_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--as", dest="as_name", type=values.stand_in, metavar="NAME", help=AS_HELP)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="runbook",
        description="Run the company-scoped migration step by step; resumes after any interruption."
        " With no command, opens the console (TUI).",
    )
    _common(parser)
    # every command's context has them
    parser.set_defaults(by=None, detached_child=False, as_name=None)
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)  # a _Parser too
        _common(p, sub=True)
        return p

    add("check", "validate the runbook; every problem with file, line and field")
    add("plan", "list every step and the calls it would make; writes nothing")
    p = add("run", "execute steps in order until done, a gate, a manual step, or a failure")
    p.add_argument("--until", help="run up to and including this step, or stop at this gate")
    p.add_argument("--only", help="run just this step (everything before it must be done)")
    p.add_argument("--yes", action="store_true", help="consent without interactive prompts")
    p.add_argument(
        "--detach",
        action="store_true",
        help="run the engine as its own process (it outlives this terminal); control it with "
        "pause | resume | stop | throttle | watch",
    )
    throttle_flags(p, "with --detach, start throttled: ")
    p.add_argument(CHILD_FLAG, action="store_true", help=argparse.SUPPRESS)
    _control_commands(add)
    p = add("status", "where the run stands")
    p.add_argument("--json", action="store_true", help="machine-readable")
    p = add("tick", "tick a manual checklist item of a gate")
    p.add_argument("gate")
    p.add_argument("item")
    p.add_argument("--by", required=True, type=values.name)
    p.add_argument("--note", default="")
    _as_flag(p)
    p = add("ack", "acknowledge a manual step")
    p.add_argument("step")
    p.add_argument("--by", required=True, type=values.name)
    p.add_argument("--note", default="")
    _as_flag(p)
    p = add("decide", "record GO or NO-GO at the gate the run waits at")
    p.add_argument("gate")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--go", action="store_true")
    group.add_argument("--no-go", action="store_true")
    p.add_argument("--by", required=True, type=values.name)
    p.add_argument("--note", default="")
    p.add_argument(
        "--override", type=values.reason, help="reason to GO although an automatic check fails"
    )
    _as_flag(p)
    p = add("rollback", "run the plan's rollback for a phase")
    p.add_argument("phase")
    p.add_argument("--yes", action="store_true", help="consent without the typed confirmation")
    p.add_argument("--preview", action="store_true", help="show the calls; change nothing")
    p.add_argument(
        "--by", type=values.name, help="who rolls back (default: --operator, else $USER)"
    )
    _as_flag(p)
    add("report", "a Markdown audit of the run")
    _state_commands(add)
    p = add("iam-policy", "print the least-privilege IAM policy (JSON) this runbook needs")
    p.add_argument(
        "--account", type=values.account, default="*", help="account id for the ARNs (default: *)"
    )
    p = add(
        "simulate",
        "embedded rehearsal only: inject an error rate into simulated traffic, or write as "
        "the application does beside the run (--app-writes)",
    )
    p.add_argument("--error-rate", type=values.percent, help="percent of failing calls")
    p.add_argument(
        "--app-writes",
        type=values.positive,
        help="write this many application items per second into the company-scoped target "
        "tables until --seconds pass or Ctrl-C, then report how many were throttled",
    )
    p.add_argument("--seconds", type=values.positive, help="--app-writes: for this long")
    p.add_argument("--json", action="store_true", help="--app-writes: the report as JSON")
    p.add_argument(
        "--seen-by",
        choices=("lambda", "api"),
        default="lambda",
        help="lambda: thrown errors (Lambda Errors and API Gateway 5XX rise); api: handlers "
        "return 500 (only API Gateway 5XX rises, Lambda Errors stay flat)",
    )
    _serve_commands(sub)
    # the list in the usage line leaves out the internal `view`
    sub.metavar = "{" + ",".join(name for name in sub.choices if name != "view") + "}"
    return parser


SERVE_HELP = (
    "serve the read-only console to web browsers on this machine (127.0.0.1) with textual-serve, "
    "for people without SSH. No key in it can act. textual-serve has NO authentication: anyone "
    "who can reach the port (every user of this machine, or an SSH tunnel) sees the run."
)


def _state_commands(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """`state push URL` / `state pull DIR`: move a run between this machine and S3."""
    p = add("state", "move a run: push a local run to S3, or pull a run in S3 to a folder")
    moves = p.add_subparsers(dest="state_command", required=True, parser_class=_Parser)
    push_help = "copy this run (--journal, or the default) to S3; this side then refuses to drive"
    q = moves.add_parser("push", help=push_help, description=push_help)
    _common(q, sub=True)
    q.add_argument("url", type=values.s3_url, help="s3://bucket/prefix/name.toml")
    pull_help = "copy the run at --journal s3://... into DIR; S3 then refuses to drive it"
    q = moves.add_parser("pull", help=pull_help, description=pull_help)
    _common(q, sub=True)
    q.add_argument("dir", type=Path, help="the folder the run's journal goes into")


def _serve_commands(sub: Any) -> None:
    """`serve`, and the hidden `view` it starts per browser (both run above the engine, in
    `tui`; see runbook_entry)."""
    p = sub.add_parser("serve", help=SERVE_HELP, description=SERVE_HELP)
    _common(p, sub=True)
    p.add_argument("--port", type=values.port, default=8000, help="TCP port (default: 8000)")
    p.add_argument(
        "--host",
        type=values.loopback_host,
        default="127.0.0.1",
        help="loopback address to bind (default and only choice: 127.0.0.1)",
    )
    # one read-only console (view-only) per browser; not for operators, so not listed
    p = sub.add_parser("view", description="view-only console (started by `runbook serve`)")
    _common(p, sub=True)
