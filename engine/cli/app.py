"""The headless CLI: `runbook <command>`. Exit codes are a contract (see EXIT_*)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.cli.codes import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_OK,
    OUTCOME_EXIT,
)
from engine.cli.driving import _driving, _workspace
from engine.cli.outcome import _finish, _resume_hint, _target_flags
from engine.cli.output import Printer, _err, _print, _silence_terminal
from engine.cli.parser import build_parser
from engine.cli.terminal import (
    NeedsTerminal,
    _install_stop_handlers,
    _lost_terminal_stops,
    make_confirm,
)
from engine.control.client import EngineGone, RemoteEngine, RemoteError, WatchMessage
from engine.control.locate import Found, find_engine
from engine.control.paths import SocketPathTooLong
from engine.detach import DetachFailed
from engine.embedded import WorldGone
from engine.events import LogLine, Progress
from engine.files import UnsafePath, append_private
from engine.journal import JournalError
from engine.loader import RunbookInvalid, default_runbook_path, load_runbook
from engine.lock import LockedError
from engine.runner import BadRequest, CommandRefused, Engine, Outcome, plan_calls
from engine.target import TargetError
from engine.workspace import BadInput, NoRun

# ---- commands -------------------------------------------------------------------------------


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


def cmd_run(args: argparse.Namespace) -> int:
    if args.only and args.until:
        raise BadRequest("--only runs one step; it cannot be combined with --until")
    if getattr(args, "remote", None) is not None:
        raise RemoteError(EXIT_LOCKED, _detached_line(args, args.remote))
    if args.detached_child:
        return _run_detached_child(args)
    if args.detach:
        return _spawn_detached(args)

    def body(engine: Engine) -> int:
        from engine.rehearsal import clock_label, plan_wait_seconds

        scale = engine.journal.run.time_scale
        waits = plan_wait_seconds(engine.runbook) / scale / 60.0
        _print(f"clock: {clock_label(scale)} (the plan's waits take about {waits:,.0f} min)")
        engine.subscribe(Printer(_lost_terminal_stops(engine)))
        _install_stop_handlers(engine)
        gaps = lambda: tuple(  # noqa: E731 - read when a deletion asks, not before
            f"archive incomplete: {gap}" for gap in engine.snapshot().archive_gaps
        )
        outcome = engine.run(until=args.until, only=args.only, confirm=make_confirm(args.yes, gaps))
        return _finish(outcome, args)

    return _driving(args, "run", body)


def cmd_status(args: argparse.Namespace) -> int:
    """The run's snapshot: as JSON (`--json`, the same object the console renders) or as text."""
    from engine.lock import is_locked
    from engine.snapshot import empty_snapshot
    from engine.status_text import render_status

    ws = _workspace(args)
    try:
        engine = ws.open_read_only()
    except NoRun:  # before any run: every step pending
        snapshot = empty_snapshot(ws.loaded.runbook, str(ws.store.path))
    else:
        holder = is_locked(engine.store.path)
        running = any(s.status == "running" for s in engine.journal.steps.values())
        snapshot = engine.snapshot(
            driver=f"{holder.user}@{holder.host}" if holder else None,
            active=holder is not None and running,
        )
    control, live = _engine_view(args)  # detach: a detached engine's own state, if one runs
    if live is not None:  # its live snapshot: running, with items/s and ETA
        snapshot = live
    if args.json:
        if control is None:
            _print(snapshot.model_dump_json(indent=2))
        else:
            data = {**json.loads(snapshot.model_dump_json()), "engine": control}
            _print(json.dumps(data, indent=2))
        return EXIT_OK
    if control is not None:
        _print(_control_line(control))
    for line in render_status(snapshot):
        _print(line)
    return EXIT_OK


def cmd_tick(args: argparse.Namespace) -> int:
    if getattr(args, "remote", None) is not None:
        args.remote.tick(args.gate, args.item, args.by, args.note)
        _print(f"{args.gate}/{args.item}: ticked by {args.by} (through the detached engine)")
        return EXIT_OK

    def body(engine: Engine) -> int:
        engine.tick(args.gate, args.item, args.by, args.note)
        _print(f"{args.gate}/{args.item}: ticked by {args.by}")
        return EXIT_OK

    return _driving(args, "tick", body)


def cmd_ack(args: argparse.Namespace) -> int:
    if getattr(args, "remote", None) is not None:
        args.remote.ack(args.step, args.by, args.note)
        _print(f"{args.step}: acknowledged by {args.by}; the detached engine continues")
        return EXIT_OK

    def body(engine: Engine) -> int:
        engine.ack(args.step, args.by, args.note)
        _print(f"{args.step}: acknowledged by {args.by}; `runbook run` continues")
        return EXIT_OK

    return _driving(args, "ack", body)


def cmd_decide(args: argparse.Namespace) -> int:
    if getattr(args, "remote", None) is not None:
        evidence = args.remote.decide(
            args.gate, go=args.go, by=args.by, note=args.note, override=args.override
        )
        for item, ev in evidence.items():
            _print(f"  [{'x' if ev['ok'] else ' '}] {item}: {ev['detail']}")
        _print(f"{args.gate}: {'GO' if args.go else 'NO-GO'} recorded by {args.by}")
        return EXIT_OK

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
    if getattr(args, "remote", None) is not None:
        return _remote_rollback(args, args.remote)

    def body(engine: Engine) -> int:
        for title, calls in engine.preview_rollback(args.phase):
            _print(f"{title}:")
            for call in calls:
                _print(f"    {call.render()}")
        if args.preview:
            return EXIT_OK
        engine.subscribe(Printer(_lost_terminal_stops(engine)))
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
    _print(render_report(engine, clients))
    return EXIT_OK


def cmd_iam_policy(args: argparse.Namespace) -> int:
    from engine.iam_policy import render

    rb = load_runbook(args.runbook or default_runbook_path()).runbook
    print(render(rb, args.account, args.region))
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
    """Without a command the console opens; it lives above the engine (`runbook_entry`)."""
    if args.command is not None:  # serve / view: the console's, through the `runbook` command
        _err(f"runbook: {args.command} belongs to the console; run it as `runbook {args.command}`")
        return EXIT_BAD_INPUT
    _err("runbook: the console opens with the `runbook` command (no sub-command); see --help")
    return EXIT_BAD_INPUT


# ---- detach: a detached engine and its control socket ----------------------------------------


def _detached_line(args: argparse.Namespace, remote: RemoteEngine) -> str:
    pid = remote.ping()
    flags = f" {_target_flags(args)}".rstrip()
    return (
        f"a detached engine (pid {pid}) runs this journal; follow it with `runbook watch{flags}`,"
        f" stop it with `runbook stop{flags}`"
    )


def _probe(args: argparse.Namespace) -> None:
    """Set args.remote to the live detached engine of this journal, or None. A socket left by a
    dead engine is removed, and said so in one line."""
    args.remote = None
    # serve / view only read the journal: they neither talk to nor tidy up after an engine;
    # the console (no command) looks: with an engine running it attaches
    if args.command in ("check", "plan", "iam-policy", "serve", "view") or getattr(
        args, "detached_child", False
    ):
        return
    try:
        found: Found = find_engine(_workspace(args).journal_path)
    except SocketPathTooLong:
        return  # no engine can listen there
    if found.stale_pid is not None:
        who = f" (pid {found.stale_pid})" if found.stale_pid else ""
        _err(
            f"runbook: the detached engine{who} is gone (its socket was left; removed); "
            "the run resumes from its last checkpoint"
            + (": resuming now" if args.command == "run" else f" with `{_resume_hint(args)}`")
        )
    args.remote = found.engine


def _engine_view(args: argparse.Namespace) -> tuple[dict[str, Any] | None, Any]:
    """(control state, live RunSnapshot) of the detached engine, or (None, None)."""
    from engine.snapshot import RunSnapshot

    if getattr(args, "remote", None) is None:
        return None, None
    try:
        answer = args.remote.status()
    except (EngineGone, OSError, RemoteError):
        return None, None
    try:
        live = RunSnapshot.model_validate(answer["snapshot"])
    except ValueError:  # an engine of another version: the journal's view stands
        live = None
    return answer["control"], live


def _control_line(control: dict[str, Any]) -> str:
    pause = {"paused": ", PAUSED at a checkpoint", "pausing": ", pausing..."}.get(
        control.get("pause") or "", ""
    )
    return (
        f"engine: detached, pid {control['pid']}, {control['activity']}{pause}; "
        f"throttle: {control['throttle']['text']}"
    )


def _by(args: argparse.Namespace) -> str:
    from engine.session import operator_name

    return args.by or operator_name(args.operator)


def _need_remote(args: argparse.Namespace) -> RemoteEngine:
    if getattr(args, "remote", None) is not None:
        return args.remote
    from engine.lock import is_locked

    holder = is_locked(_workspace(args).journal_path)
    if holder is not None:
        raise RemoteError(
            EXIT_LOCKED,
            f"the run is driven in the foreground by {holder.describe()}, without a control "
            "socket; act there (Ctrl-C stops it)",
        )
    raise BadRequest(
        "no detached engine runs for this journal; start one with "
        + f"`runbook run --detach {_target_flags(args)}".rstrip()
        + "`"
    )


def _spawn_detached(args: argparse.Namespace) -> int:
    from engine.detach import spawn

    try:
        started = spawn(args.argv)
    except DetachFailed as exc:
        for line in exc.lines:
            _err(line)
        return exc.code
    flags = _target_flags(args)
    _print(f"engine started: pid {started.pid}; it runs on without this terminal")
    _print(f"  journal {started.journal}; log {started.log}")
    _print(f"  control socket {started.socket} (you only)")
    _print(f"  follow: runbook watch {flags}".rstrip())
    _print(f"  control: runbook pause|resume|stop|throttle {flags}".rstrip())
    return EXIT_OK


def _run_detached_child(args: argparse.Namespace) -> int:
    """The engine process itself (`run --detach` started it in its own session)."""
    from engine.control.driver import DetachedRun
    from engine.control.paths import socket_path
    from engine.control.server import ControlServer
    from engine.detach import signal_ready

    ws = _workspace(args)
    path = socket_path(ws.journal_path)

    def body(engine: Engine) -> int:
        driver = DetachedRun(engine, args.until, args.only, consent=args.yes, socket=str(path))
        server = ControlServer(path, ws.journal_path, driver)
        server.start()

        def on_signal(_signum: int, _frame: Any) -> None:
            driver.signal_stop()  # only sets events: safe in a signal handler

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # no terminal to lose
        engine.log(f"detached engine started (pid {os.getpid()}); control socket {path}")
        signal_ready(
            {
                "pid": os.getpid(),
                "socket": str(path),
                "journal": str(ws.journal_path),
                "log": str(engine.store.log_path),
            }
        )
        try:
            outcome = driver.serve()
        finally:
            server.close()
        engine.log(f"detached engine exits: {outcome.status} {outcome.message}".rstrip())
        return OUTCOME_EXIT[outcome.status]

    ws.acquire("run --detach")
    try:
        return body(ws.open(create=True))
    finally:
        ws.release()


def cmd_pause(args: argparse.Namespace) -> int:
    _print(_need_remote(args).pause(_by(args)))
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    _print(_need_remote(args).resume(_by(args), consent=args.yes))
    return EXIT_OK


STOP_WAIT_SECONDS = 30.0


def cmd_stop(args: argparse.Namespace) -> int:
    from engine.lock import is_locked

    remote = _need_remote(args)
    _print(remote.stop(_by(args)))
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    journal = _workspace(args).journal_path
    while is_locked(journal) is not None:  # the engine lets go of the lock as it exits
        if time.monotonic() > deadline:
            _err(
                f"runbook: the engine has not exited after {STOP_WAIT_SECONDS:g} s; it may be "
                "blocked in a call (`runbook status` shows where)"
            )
            return EXIT_FAILED
        time.sleep(0.1)  # polling the lock file: an observable condition with a deadline
    _print(f"engine stopped; checkpoint saved. Resume with: {_resume_hint(args)} [--detach]")
    return EXIT_OK


def cmd_throttle(args: argparse.Namespace) -> int:
    settings = {k: getattr(args, k) for k in ("rate", "in_flight", "segments") if hasattr(args, k)}
    if not settings:
        raise BadRequest("throttle: give --rate, --in-flight and/or --segments (a value or off)")
    _print("throttle: " + _need_remote(args).throttle(_by(args), **settings))
    return EXIT_OK


def _remote_rollback(args: argparse.Namespace, remote: RemoteEngine) -> int:
    for step in remote.preview_rollback(args.phase):
        _print(f"{step['title']}:")
        for call in step["calls"]:
            _print(f"    {call}")
    if args.preview:
        return EXIT_OK
    rollback = _workspace(args).loaded.runbook.rollback_for(args.phase)
    consent = make_confirm(args.yes)
    if rollback is not None and rollback.destructive and not consent(rollback.title, args.phase):
        declined = Outcome("declined", message="rollback not confirmed; nothing was changed")
        return _finish(declined, args)
    status, message = remote.rollback(args.phase, args.by or _by(args))
    return _finish(Outcome(status, message=message), args)  # type: ignore[arg-type]


def _step_summary(status: dict[str, Any]) -> str:
    steps = status.get("steps", [])
    done = sum(1 for s in steps if s.get("status") == "done")
    running = next((s["id"] for s in steps if s.get("status") == "running"), None)
    waiting = status.get("waiting")
    line = f"run: {done}/{len(steps)} steps done"
    if running:
        line += f"; running {running}"
    if waiting:
        line += f"; waiting at {waiting['kind']} {waiting['id']}"
    return line


def cmd_watch(args: argparse.Namespace) -> int:
    """A headless follower of a detached engine (the console attaches later the same way)."""
    remote = _need_remote(args)
    printer = Printer(_print)
    shown: dict[str, str] = {}
    ended: dict[str, str] = {}

    def changed(kind: str, line: str) -> None:
        if shown.get(kind) != line:
            shown[kind] = line
            _print(line)

    def on(msg: WatchMessage) -> None:
        data = msg.data
        if msg.type == "progress":
            printer(
                Progress(
                    data["step"],
                    data["table"],
                    data["done"],
                    data["total"],
                    data.get("rate") or 0.0,
                    data.get("eta"),
                )
            )
        elif msg.type == "log":
            printer(LogLine(data["step"], data["level"], data["message"], data.get("at", "")))
        elif msg.type == "control":
            changed("control", _control_line(data))
        elif msg.type in ("snapshot", "status"):
            changed("status", _step_summary(data))
        elif msg.type == "end":
            ended.update(data)

    subscription = remote.subscribe(on)
    try:
        subscription.ended.wait()
    except KeyboardInterrupt:
        subscription.close()
        return EXIT_OK
    if not ended:
        _err("runbook: the engine went away without saying so; `runbook status` shows where")
        return EXIT_BAD_INPUT
    _print(f"engine ended: {ended.get('outcome')} {ended.get('message', '')}".rstrip())
    return EXIT_OK


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
    "iam-policy": cmd_iam_policy,
    "pause": cmd_pause,
    "resume": cmd_resume,
    "stop": cmd_stop,
    "throttle": cmd_throttle,
    "watch": cmd_watch,
    "attach": cmd_watch,  # without the console (engine.cli run directly): headless
    "serve": cmd_console,
    "view": cmd_console,
}
# they open the console (tui), via runbook_entry
CONSOLE_COMMANDS = (None, "serve", "view", "attach")


def _traceback_log(args: argparse.Namespace) -> Path | None:
    """Where a traceback goes: the `.log` beside the journal, else one in the state folder."""
    from engine.session import default_journal_path, state_dir
    from engine.target import TargetSpec

    journal = getattr(args, "journal", None)
    if journal is None:
        try:
            runbook_id = load_runbook(args.runbook or default_runbook_path()).runbook.runbook.id
            spec = TargetSpec(args.endpoint_url, args.profile, args.region)
            journal = default_journal_path(runbook_id, spec.slug())
        except Exception:
            return state_dir() / "runbook-console.log"
    return journal.with_name(journal.stem + ".log")


def _unexpected(args: argparse.Namespace, exc: BaseException) -> int:
    """One clear line for the operator; the traceback goes to the log, never to the screen."""
    detail = "".join(traceback.format_exception(exc))
    where = _traceback_log(args)
    saved = ""
    for path in (where, None):
        try:
            target = path or Path(os.environ.get("TMPDIR", "/tmp")) / "runbook-console-errors.log"
            append_private(
                target,
                f"--- {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} "
                f"runbook {args.command or 'console'}\n{detail}",
            )
            saved = f" (details in {target})"
            break
        except OSError:
            continue
    _err(f"runbook: {_describe(exc)}; the journal was left untouched{saved}")
    return EXIT_BAD_INPUT


def _describe(exc: BaseException) -> str:
    import errno

    if isinstance(exc, KeyboardInterrupt):
        return "interrupted before the run began (nothing was started)"
    if isinstance(exc, UnsafePath):
        return str(exc)
    if isinstance(exc, OSError):
        what = {
            errno.EACCES: "permission denied",
            errno.EPERM: "operation not permitted",
            errno.EROFS: "read-only file system",
            errno.ENOSPC: "no space left on the device",
            errno.EDQUOT: "disk quota exceeded",
            errno.ENOTDIR: "a folder on the path is a file",
            errno.EISDIR: "expected a file, found a folder",
            errno.ENOENT: "no such file or folder",
        }.get(exc.errno or 0, exc.strerror or type(exc).__name__)
        if exc.errno == errno.EEXIST and exc.filename and not Path(exc.filename).is_dir():
            what = "a folder on the path is a file"
        where = f": {exc.filename}" if exc.filename else ""
        return f"{what}{where}"
    name = type(exc).__name__
    if name == "ProfileNotFound":
        return f"{exc} (check --profile against ~/.aws/config)"
    return f"{name}: {exc}"


def _leave_abandoned_calls() -> None:
    """A stop abandons a call blocked on a hung endpoint (its thread keeps waiting): the
    checkpoint is saved and the lock released, so exit now instead of joining that thread."""
    if any(t.is_alive() and not t.daemon for t in threading.enumerate()[1:]):
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(EXIT_INTERRUPTED)


def main(
    argv: list[str] | None = None,
    console: Callable[[argparse.Namespace], int] | None = None,
) -> int:
    """`console`: what opens the console when no command is given (see runbook_entry)."""
    # artifacts hold full item copies: everything this process creates is the operator's only
    os.umask(0o077)
    try:
        args = build_parser().parse_args(argv)
    except BrokenPipeError:  # --help | head
        _silence_terminal()
        return EXIT_OK
    args.argv = list(sys.argv[1:] if argv is None else argv)  # detach: the child's arguments
    try:
        code = _main(args, console)
        if code == EXIT_INTERRUPTED and argv is None:
            _leave_abandoned_calls()
        return code
    except BrokenPipeError:  # `runbook plan | head`: the reader has all it wants
        _silence_terminal()
        return EXIT_OK
    except (KeyboardInterrupt, Exception) as exc:  # no traceback ever reaches the operator
        return _unexpected(args, exc)


def _main(
    args: argparse.Namespace, console: Callable[[argparse.Namespace], int] | None = None
) -> int:
    try:
        _probe(args)
        if args.command in CONSOLE_COMMANDS and console is not None:
            return console(args)  # the console lives above the engine (runbook_entry)
        return COMMANDS[args.command](args)
    except RemoteError as exc:  # the detached engine answered: its one line, its exit code
        _err(f"runbook: {exc}")
        return exc.code
    except EngineGone as exc:
        _err(
            f"runbook: the detached engine went away ({exc}); `runbook status` shows the "
            "checkpoint, `runbook run` resumes"
        )
        return EXIT_BAD_INPUT
    except SocketPathTooLong as exc:
        _err(f"runbook: {exc}")
        return EXIT_BAD_INPUT
    except RunbookInvalid as exc:
        for problem in exc.problems:
            _err(problem.render())
        return EXIT_BAD_INPUT
    except LockedError as exc:
        _err(f"runbook: {exc}. Only one driver per journal; ask them, or wait.")
        return EXIT_LOCKED
    except (JournalError, NoRun, BadRequest, BadInput, TargetError, NeedsTerminal) as exc:
        _err(f"runbook: {exc}")
        return EXIT_BAD_INPUT
    except WorldGone as exc:
        _err(
            f"runbook: {exc}. Start a fresh rehearsal with a new journal: runbook run --fresh "
            "(the old journal is kept aside)."
        )
        return EXIT_BAD_INPUT
    except CommandRefused as exc:
        _err(f"runbook: refused: {exc}")
        return EXIT_FAILED
