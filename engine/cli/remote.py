"""The detached engine of a journal: finding it (a stale socket is removed) and asking it."""

from __future__ import annotations

from engine.cli.context import CliContext
from engine.cli.output import say_error
from engine.control.client import EngineGone, RemoteEngine
from engine.control.locate import Found, find_engine
from engine.control.paths import SocketPathTooLong
from engine.core.commands import ControlState
from engine.core.outcome import BadRequest, CommandRefused, NotAllowed
from engine.core.views import RunSnapshot
from engine.state.lock import is_locked

# they only read the journal: they neither talk to nor tidy up after an engine
NO_PROBE = ("check", "plan", "iam-policy", "serve", "view")


class DrivenElsewhere(Exception):
    """Another process drives this journal: a detached engine, or a foreground run (exit 4)."""


def detached_line(ctx: CliContext, remote: RemoteEngine) -> str:
    pid = remote.ping()
    flags = f" {ctx.target_flags()}".rstrip()
    return (
        f"a detached engine (pid {pid}) runs this journal; follow it with `runbook watch{flags}`,"
        f" stop it with `runbook stop{flags}`"
    )


def probe_engine(ctx: CliContext) -> None:
    """Set ctx.remote to the live detached engine of this journal, or None. A socket left by a
    dead engine is removed, and said so in one line. The console (no command) looks: with an
    engine running it attaches."""
    ctx.remote = None
    if ctx.command in NO_PROBE or ctx.detached_child:
        return
    try:
        found: Found = find_engine(ctx.workspace().journal_path)
    except SocketPathTooLong:
        return  # no engine can listen there
    if found.stale_pid is not None:
        who = f" (pid {found.stale_pid})" if found.stale_pid else ""
        say_error(
            f"runbook: the detached engine{who} is gone (its socket was left; removed); "
            "the run resumes from its last checkpoint"
            + (": resuming now" if ctx.command == "run" else f" with `{ctx.resume_hint()}`")
        )
    if found.engine is not None:  # its commands carry this side's STS identity, signed
        found.engine.prove = ctx.sts_proof
    ctx.remote = found.engine


def engine_view(ctx: CliContext) -> tuple[ControlState | None, RunSnapshot | None]:
    """(control state, live RunSnapshot) of the detached engine, or (None, None) (none runs,
    or one of another version whose answer this client cannot read: the journal's view)."""
    if ctx.remote is None:
        return None, None
    try:
        answer = ctx.remote.status()
    except (EngineGone, OSError, BadRequest, CommandRefused, NotAllowed):
        return None, None
    return answer.control, answer.snapshot


def control_line(control: ControlState) -> str:
    pause = {"paused": ", PAUSED at a checkpoint", "pausing": ", pausing..."}.get(
        control.pause or "", ""
    )
    return (
        f"engine: detached, pid {control.pid}, {control.activity}{pause}; "
        f"throttle: {control.throttle.text}"
    )


def need_remote(ctx: CliContext) -> RemoteEngine:
    if ctx.remote is not None:
        return ctx.remote
    holder = is_locked(ctx.workspace().journal_path)
    if holder is not None:
        raise DrivenElsewhere(
            f"the run is driven in the foreground by {holder.describe()}, without a control "
            "socket; act there (Ctrl-C stops it)"
        )
    raise BadRequest(
        f"no detached engine runs for this journal; start one with "
        f"`{f'runbook run --detach {ctx.target_flags()}'.rstrip()}`"
    )
