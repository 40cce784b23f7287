"""The headless CLI: `runbook <command>`. Exit codes are a contract (see EXIT_*)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.embedded import WorldGone
from engine.events import Alert, Event, LogLine, Progress, StepFinished, StepStarted
from engine.journal import JournalError
from engine.loader import RunbookInvalid, default_runbook_path, load_runbook
from engine.lock import LockedError
from engine.runner import BadRequest, Engine, Outcome, Refused, plan_calls
from engine.target import TargetError
from engine.workspace import NoRun, Workspace, WorkspaceOptions

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_WAITING, EXIT_LOCKED, EXIT_INTERRUPTED = (
    0,
    1,
    2,
    3,
    4,
    130,
)
OUTCOME_EXIT = {
    "done": EXIT_OK,
    "waiting": EXIT_WAITING,
    "failed": EXIT_FAILED,
    "declined": EXIT_FAILED,
    "interrupted": EXIT_INTERRUPTED,
}


class NeedsTerminal(Exception):
    """A prompt was needed, but there is no TTY and no --yes."""


def _common(parser: argparse.ArgumentParser, sub: bool = False) -> None:
    """Flags valid before or after the command; a sub-parser must not reset them to None."""
    default: Any = argparse.SUPPRESS if sub else None
    parser.add_argument(
        "--runbook", type=Path, default=default, help="runbook TOML (default: the bundled plan)"
    )
    parser.add_argument(
        "--journal",
        type=Path,
        default=default,
        help="journal path (default: under $XDG_STATE_HOME/runbook-console)",
    )
    parser.add_argument(
        "--endpoint-url", default=default, help="drive this endpoint (e.g. a moto server)"
    )
    parser.add_argument("--profile", default=default, help="AWS profile: drive a real account")
    parser.add_argument("--region", default=default, help="AWS region: drive a real account")
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
        type=float,
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runbook",
        description="Run the company-scoped migration step by step; resumes after any interruption."
        " With no command, opens the console (TUI).",
    )
    _common(parser)
    sub = parser.add_subparsers(dest="command")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _common(p, sub=True)
        return p

    add("check", "validate the runbook; every problem with file, line and field")
    add("plan", "list every step and the calls it would make; writes nothing")
    p = add("run", "execute steps in order until done, a gate, a manual step, or a failure")
    p.add_argument("--until", help="run up to and including this step, or stop at this gate")
    p.add_argument("--only", help="run just this step (everything before it must be done)")
    p.add_argument("--yes", action="store_true", help="consent without interactive prompts")
    p = add("status", "where the run stands")
    p.add_argument("--json", action="store_true", help="machine-readable")
    p = add("tick", "tick a manual checklist item of a gate")
    p.add_argument("gate")
    p.add_argument("item")
    p.add_argument("--by", required=True)
    p.add_argument("--note", default="")
    p = add("ack", "acknowledge a manual step")
    p.add_argument("step")
    p.add_argument("--by", required=True)
    p.add_argument("--note", default="")
    p = add("decide", "record GO or NO-GO at the gate the run waits at")
    p.add_argument("gate")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--go", action="store_true")
    group.add_argument("--no-go", action="store_true")
    p.add_argument("--by", required=True)
    p.add_argument("--note", default="")
    p.add_argument("--override", help="reason to GO although an automatic check fails")
    p = add("rollback", "run the plan's rollback for a phase")
    p.add_argument("phase")
    p.add_argument("--yes", action="store_true", help="consent without the typed confirmation")
    p.add_argument("--preview", action="store_true", help="show the calls; change nothing")
    p.add_argument("--by", help="who rolls back (default: --operator, else $USER)")
    add("report", "a Markdown audit of the run")
    p = add("simulate", "embedded rehearsal only: inject an error rate into simulated traffic")
    p.add_argument("--error-rate", type=float, required=True, help="percent of failing calls")
    return parser


# ---- output ---------------------------------------------------------------------------------


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA --:--"
    seconds = int(seconds)
    return f"ETA {seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Printer:
    """gh-ost-like status lines: one per table at most every second, plus log lines."""

    def __init__(self, out: Callable[[str], None]) -> None:
        self.out = out
        self.last: dict[tuple[str, str], float] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, LogLine):
            self.out(f"{event.level.upper():7} [{event.step_id or 'run'}] {event.message}")
        elif isinstance(event, StepStarted):
            verb = "resuming" if event.resumed else "starting"
            self.out(f"==> {verb} {event.step_id}: {event.title} (attempt {event.attempt})")
        elif isinstance(event, StepFinished):
            tail = f": {event.error}" if event.error else ""
            self.out(f"<== {event.step_id} {event.status}{tail}")
        elif isinstance(event, Alert):
            self.out(
                f"!!! ALERT {event.trigger_id}: {event.message} "
                f"(measured {event.measured:g}, threshold {event.threshold:g}); "
                f"proposed rollback: {event.proposed_rollback}"
            )
        elif isinstance(event, Progress):
            key = (event.step_id, event.table)
            now = time.monotonic()
            final = event.total is not None and event.done >= event.total
            if not final and now - self.last.get(key, 0.0) < 1.0:
                return
            self.last[key] = now
            total = f"{event.total:,}" if event.total is not None else "?"
            flight = event.in_flight
            pct = f" ({100 * event.done / event.total:.1f}%)" if event.total else ""
            self.out(
                f"    {event.table}: {event.done:,}/{total}{pct} "
                f"{event.rate:,.0f} items/s {_fmt_eta(event.eta_seconds)}"
                + (f" {flight[0]}/{flight[1]} in flight" if flight else "")
            )


def _print(line: str) -> None:
    print(line, flush=True)


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def make_confirm(assume_yes: bool) -> Callable[[str, str], bool]:
    def confirm(what: str, token: str) -> bool:
        if assume_yes:
            return True
        if not sys.stdin.isatty():
            raise NeedsTerminal(
                f"'{what}' needs confirmation; no terminal to ask on. Re-run with --yes to consent."
            )
        answer = input(f"{what} is destructive. Type {token} to confirm (anything else stops): ")
        return answer.strip() == token

    return confirm


def _install_stop_handlers(engine: Engine) -> None:
    def handler(signum: int, _frame: Any) -> None:
        _err(f"received {signal.Signals(signum).name}: checkpointing and stopping...")
        engine.request_stop()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def _resume_hint(args: argparse.Namespace) -> str:
    parts = ["runbook", "run"]
    for flag in ("runbook", "journal", "endpoint_url", "profile", "region"):
        value = getattr(args, flag, None)
        if value:
            parts += [f"--{flag.replace('_', '-')}", str(value)]
    return " ".join(parts)


def _finish(outcome: Outcome, args: argparse.Namespace) -> int:
    if outcome.status == "interrupted":
        _err(f"interrupted; checkpoint saved. Resume with: {_resume_hint(args)}")
    elif outcome.status == "waiting" and outcome.waiting:
        kind, node = outcome.waiting["kind"], outcome.waiting["id"]
        how = (
            f"runbook decide {node} --go|--no-go --by NAME"
            if kind == "gate"
            else f"runbook ack {node} --by NAME"
        )
        _print(f"waiting at {kind} {node}: {outcome.message}. Next: {how}")
    elif outcome.message:
        (_err if outcome.status != "done" else _print)(outcome.message)
    return OUTCOME_EXIT[outcome.status]


# ---- commands -------------------------------------------------------------------------------


def _workspace(args: argparse.Namespace) -> Workspace:
    return Workspace(
        WorkspaceOptions(
            runbook=args.runbook,
            journal=args.journal,
            endpoint_url=args.endpoint_url,
            profile=args.profile,
            region=args.region,
            operator=args.operator,
            time_scale=args.time_scale,
            accept_runbook_change=args.accept_runbook_change,
            mapping_overrides=args.mapping_overrides,
            fresh=args.fresh,
        )
    )


def cmd_check(args: argparse.Namespace) -> int:
    loaded = load_runbook(args.runbook or default_runbook_path())
    for problem in loaded.warnings:
        _print(problem.render())
    rb = loaded.runbook
    _print(
        f"{loaded.path}: ok: {len(rb.steps)} steps, {len(rb.gates)} gates, "
        f"{len(rb.rollbacks)} rollbacks, {len(loaded.warnings)} warning(s)"
    )
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    loaded = load_runbook(args.runbook or default_runbook_path())
    rb = loaded.runbook
    for (kind, node_id), calls in plan_calls(rb):
        if kind == "gate":
            _print(f"\nGATE {node_id}: {rb.gate(node_id).title}")
        else:
            step = rb.step(node_id)
            day = rb.day(rb.phase(step.phase).day)
            flag = " [destructive]" if step.destructive else ""
            _print(f"\n{day.id} {step.slot} {step.phase} {node_id}: {step.title}{flag}")
        for call in calls:
            _print(f"    {call.render()}")
    for problem in loaded.warnings:
        _print(problem.render())
    return EXIT_OK


def _driving(args: argparse.Namespace, operation: str, body: Callable[[Engine], int]) -> int:
    ws = _workspace(args)
    ws.acquire(operation)
    try:
        engine = ws.open(create=operation == "run")
        return body(engine)
    finally:
        ws.release()


def cmd_run(args: argparse.Namespace) -> int:
    def body(engine: Engine) -> int:
        engine.subscribe(Printer(_print))
        _install_stop_handlers(engine)
        outcome = engine.run(until=args.until, only=args.only, confirm=make_confirm(args.yes))
        return _finish(outcome, args)

    return _driving(args, "run", body)


def cmd_status(args: argparse.Namespace) -> int:
    ws = _workspace(args)
    engine = ws.open_read_only()
    status = engine.status()
    if args.json:
        print(json.dumps(status, indent=2, default=str))
        return EXIT_OK
    run = status["run"]
    _print(
        f"run {run['runbook_id']} by {run['operator']} since {run['started_at']} "
        f"against {run['target']['kind']} {run['target']['identity']}"
    )
    for step in status["steps"]:
        prog = " ".join(f"{t}={p['done']}/{p['total']}" for t, p in step["progress"].items())
        _print(f"  {step['status']:11} {step['slot']} {step['id']} {prog}".rstrip())
    for gate in status["gates"]:
        _print(f"  gate {gate['id']}: {gate['decision'] or 'undecided'}")
    _print(f"waiting: {status['waiting']}")
    return EXIT_OK


def cmd_tick(args: argparse.Namespace) -> int:
    def body(engine: Engine) -> int:
        engine.tick(args.gate, args.item, args.by, args.note)
        _print(f"{args.gate}/{args.item}: ticked by {args.by}")
        return EXIT_OK

    return _driving(args, "tick", body)


def cmd_ack(args: argparse.Namespace) -> int:
    def body(engine: Engine) -> int:
        engine.ack(args.step, args.by, args.note)
        _print(f"{args.step}: acknowledged by {args.by}; `runbook run` continues")
        return EXIT_OK

    return _driving(args, "ack", body)


def cmd_decide(args: argparse.Namespace) -> int:
    def body(engine: Engine) -> int:
        evidence = engine.decide(
            args.gate, go=args.go, by=args.by, note=args.note, override=args.override
        )
        for item, ev in evidence.items():
            _print(f"  [{'x' if ev.ok else ' '}] {item}: {ev.detail}")
        _print(f"{args.gate}: {'GO' if args.go else 'NO-GO'} recorded by {args.by}")
        return EXIT_OK

    return _driving(args, "decide", body)


def cmd_rollback(args: argparse.Namespace) -> int:
    def body(engine: Engine) -> int:
        for title, calls in engine.preview_rollback(args.phase):
            _print(f"{title}:")
            for call in calls:
                _print(f"    {call.render()}")
        if args.preview:
            return EXIT_OK
        engine.subscribe(Printer(_print))
        _install_stop_handlers(engine)
        by = args.by or engine.options.operator
        outcome = engine.rollback(args.phase, by, make_confirm(args.yes))
        return _finish(outcome, args)

    return _driving(args, "rollback", body)


def cmd_report(args: argparse.Namespace) -> int:
    from engine.report import render_report

    ws = _workspace(args)
    engine = ws.open_read_only()
    try:
        live = ws.open_read_only(connected=True)
        clients = live.clients
    except (WorldGone, TargetError) as exc:
        _err(f"note: target not reachable ({exc}); the report uses the journal only")
        clients = None
    print(render_report(engine, clients))
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    from engine.simulator import set_error_rate

    ws = _workspace(args)
    if not ws.is_embedded:
        raise BadRequest("simulate drives the embedded rehearsal world only")
    engine = ws.open_read_only(connected=True)
    set_error_rate(engine.clients, args.error_rate)
    _print(f"simulated traffic now fails {args.error_rate:g}% of calls")
    return EXIT_OK


def cmd_console(args: argparse.Namespace) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        _err(
            "runbook: the console needs a terminal (no TTY here). Use the headless commands: "
            "runbook run | status | decide | ack | tick | rollback | report"
        )
        return EXIT_BAD_INPUT
    try:
        from tui.app import run_console
    except ImportError:
        _err("runbook: the console is not available in this build; use the headless commands")
        return EXIT_BAD_INPUT
    return run_console(_workspace(args))


COMMANDS: dict[str | None, Callable[[argparse.Namespace], int]] = {
    None: cmd_console,
    "check": cmd_check,
    "plan": cmd_plan,
    "run": cmd_run,
    "status": cmd_status,
    "tick": cmd_tick,
    "ack": cmd_ack,
    "decide": cmd_decide,
    "rollback": cmd_rollback,
    "report": cmd_report,
    "simulate": cmd_simulate,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except RunbookInvalid as exc:
        for problem in exc.problems:
            _err(problem.render())
        return EXIT_BAD_INPUT
    except LockedError as exc:
        _err(f"runbook: {exc}. Only one driver per journal; ask them, or wait.")
        return EXIT_LOCKED
    except (JournalError, NoRun, BadRequest, TargetError, NeedsTerminal) as exc:
        _err(f"runbook: {exc}")
        return EXIT_BAD_INPUT
    except WorldGone as exc:
        _err(
            f"runbook: {exc}. Start a fresh rehearsal with a new journal: runbook run --fresh "
            "(the old journal is kept aside)."
        )
        return EXIT_BAD_INPUT
    except Refused as exc:
        _err(f"runbook: refused: {exc}")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
