"""Errors told to the operator: one line each and an exit code; tracebacks go to a log file."""

from __future__ import annotations

import errno
import time
import traceback
from pathlib import Path

from engine.aws.target import TargetError, TargetSpec
from engine.cli.codes import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_LOCKED
from engine.cli.context import CliContext
from engine.cli.output import say_error
from engine.cli.remote import DrivenElsewhere
from engine.cli.terminal import NeedsTerminal
from engine.control.client import EngineGone
from engine.control.paths import SocketPathTooLong
from engine.core.outcome import BadRequest, CommandRefused, NotAllowed
from engine.plan.loader import RunbookInvalid, default_runbook_path, load_runbook
from engine.rehearsal.embedded import WorldGone
from engine.session.journals import default_journal_path, state_dir
from engine.session.workspace import BadInput, NoRun
from engine.state.errors import JournalError
from engine.state.files import UnsafePath, append_owned, append_private, private_error_log
from engine.state.lock import LockedError
from engine.state.s3_location import parse_s3_url


def _traceback_log(ctx: CliContext) -> Path | None:
    """Where a traceback goes: the `.log` beside the journal, else one in the state folder."""
    target = ctx.target
    journal = target.journal
    if journal is None:
        try:
            runbook_id = load_runbook(target.runbook or default_runbook_path()).runbook.runbook.id
            spec = TargetSpec(target.endpoint_url, target.profile, target.region)
            journal = default_journal_path(runbook_id, spec.slug())
        except Exception:
            return state_dir() / "runbook-console.log"
    if isinstance(journal, str):  # an S3 journal: its log's working copy on this machine
        journal = parse_s3_url(journal).cache_path(state_dir())
    return journal.with_name(journal.stem + ".log")


def unexpected_error_exit(ctx: CliContext, exc: BaseException) -> int:
    """One clear line for the operator; the traceback goes to the log, never to the screen."""
    detail = "".join(traceback.format_exception(exc))
    saved = ""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    entry = f"--- {stamp} runbook {ctx.command or 'console'}\n{detail}"
    for target, write in ((_traceback_log(ctx), append_private),
                          (private_error_log(), append_owned)):  # fmt: skip
        try:
            write(target, entry)
            saved = f" (details in {target})"
            break
        except OSError:
            continue
    say_error(f"runbook: {_describe(exc)}; the journal was left untouched{saved}")
    return EXIT_BAD_INPUT


def _describe(exc: BaseException) -> str:
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


# what the operator can act on, told in one line: everything else is `unexpected_error_exit`
KNOWN_ERRORS = (
    DrivenElsewhere,
    NotAllowed,
    EngineGone,
    SocketPathTooLong,
    RunbookInvalid,
    LockedError,
    JournalError,
    NoRun,
    BadRequest,
    BadInput,
    TargetError,
    NeedsTerminal,
    WorldGone,
    CommandRefused,
)


def known_error_exit(exc: Exception) -> int:
    """Tell one of KNOWN_ERRORS (the first class that matches, in that order); its exit code."""
    if isinstance(exc, DrivenElsewhere):
        say_error(f"runbook: {exc}")
        return EXIT_LOCKED
    if isinstance(exc, NotAllowed):
        say_error(f"runbook: refused: {exc}")
        return EXIT_LOCKED
    if isinstance(exc, EngineGone):
        say_error(
            f"runbook: the detached engine went away ({exc}); `runbook status` shows the "
            "checkpoint, `runbook run` resumes"
        )
        return EXIT_BAD_INPUT
    if isinstance(exc, SocketPathTooLong):
        say_error(f"runbook: {exc}")
        return EXIT_BAD_INPUT
    if isinstance(exc, RunbookInvalid):
        for problem in exc.problems:
            say_error(problem.render())
        return EXIT_BAD_INPUT
    if isinstance(exc, LockedError):
        say_error(f"runbook: {exc}. Only one driver per journal; ask them, or wait.")
        return EXIT_LOCKED
    if isinstance(exc, (JournalError, NoRun, BadRequest, BadInput, TargetError, NeedsTerminal)):
        say_error(f"runbook: {exc}")
        return EXIT_BAD_INPUT
    if isinstance(exc, WorldGone):
        say_error(
            f"runbook: {exc}. Start a fresh rehearsal with a new journal: runbook run --fresh "
            "(the old journal is kept aside)."
        )
        return EXIT_BAD_INPUT
    if isinstance(exc, CommandRefused):
        say_error(f"runbook: refused: {exc}")
        return EXIT_FAILED
    raise exc  # not one of KNOWN_ERRORS
