"""The detached engine of a journal: finding it (a stale socket is removed) and asking it."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.codes import EXIT_LOCKED
from engine.cli.driving import open_workspace
from engine.cli.outcome import resume_hint, target_flags
from engine.cli.output import say_error
from engine.control.client import EngineGone, RemoteEngine, RemoteError
from engine.control.locate import Found, find_engine
from engine.control.paths import SocketPathTooLong
from engine.core.outcome import BadRequest
from engine.core.views import RunSnapshot
from engine.session.journals import operator_name
from engine.state.lock import is_locked


def detached_line(args: argparse.Namespace, remote: RemoteEngine) -> str:
    pid = remote.ping()
    flags = f" {target_flags(args)}".rstrip()
    return (
        f"a detached engine (pid {pid}) runs this journal; follow it with `runbook watch{flags}`,"
        f" stop it with `runbook stop{flags}`"
    )


def probe_engine(args: argparse.Namespace) -> None:
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
        found: Found = find_engine(open_workspace(args).journal_path)
    except SocketPathTooLong:
        return  # no engine can listen there
    if found.stale_pid is not None:
        who = f" (pid {found.stale_pid})" if found.stale_pid else ""
        say_error(
            f"runbook: the detached engine{who} is gone (its socket was left; removed); "
            "the run resumes from its last checkpoint"
            + (": resuming now" if args.command == "run" else f" with `{resume_hint(args)}`")
        )
    args.remote = found.engine


def engine_view(args: argparse.Namespace) -> tuple[dict[str, Any] | None, Any]:
    """(control state, live RunSnapshot) of the detached engine, or (None, None)."""

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


def control_line(control: dict[str, Any]) -> str:
    pause = {"paused": ", PAUSED at a checkpoint", "pausing": ", pausing..."}.get(
        control.get("pause") or "", ""
    )
    return (
        f"engine: detached, pid {control['pid']}, {control['activity']}{pause}; "
        f"throttle: {control['throttle']['text']}"
    )


def operator_of(args: argparse.Namespace) -> str:

    return getattr(args, "by", None) or operator_name(args.operator)  # `run` has no --by


def need_remote(args: argparse.Namespace) -> RemoteEngine:
    if getattr(args, "remote", None) is not None:
        return args.remote

    holder = is_locked(open_workspace(args).journal_path)
    if holder is not None:
        raise RemoteError(
            EXIT_LOCKED,
            f"the run is driven in the foreground by {holder.describe()}, without a control "
            "socket; act there (Ctrl-C stops it)",
        )
    raise BadRequest(
        "no detached engine runs for this journal; start one with "
        + f"`runbook run --detach {target_flags(args)}".rstrip()
        + "`"
    )
