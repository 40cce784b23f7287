"""The step-functions copy's execution, followed: its map runs' counts onto the step's progress
bar until it closes, a stop sent the moment it is asked for, and whether every item was done.
The journal keeps the ARNs and the last counts only (SfnCursor)."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from botocore.exceptions import ClientError

from engine.actions.migrate.params import MigrateParams
from engine.actions.migrate.sfn_definition import FILES_LABEL
from engine.actions.migrate.state import MapCounts, SfnCursor
from engine.aws import stepfunctions as sfnx
from engine.core.clock import Interrupted
from engine.core.context import ActionContext
from engine.runbook.model import EntitySpec

STOP_JOIN_SECONDS = 1.0  # within the engine's stop grace; the request goes on past it
WATCH_SECONDS = 0.2
STOPPED_ERROR = "Runbook.Stopped"  # the error of an execution this step stopped


class CopyFailed(RuntimeError):
    """The execution or its map run ended with items not done; `runbook run` redrives it."""


class StopWatch:
    """Sends StopExecution the moment a stop is requested, from a thread of its own: a poll
    may be waiting on the endpoint when the stop comes, and the engine abandons a step that
    does not unwind within its stop grace (engine/core/abandon.py). The step joins it on the
    way out; a console that exits first (the abandoned case) may leave the request unanswered,
    and the resume then attaches to the execution. A SIGKILL sends nothing."""

    def __init__(self, ctx: ActionContext, sfn: Any, arn: str) -> None:
        self.ctx, self.sfn, self.arn = ctx, sfn, arn
        self.done = threading.Event()
        self.sent = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="stop-execution", daemon=True)

    def __enter__(self) -> StopWatch:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()

    def _watch(self) -> None:
        stop = self.ctx.clock.stop
        while not self.done.is_set():
            if stop.wait(WATCH_SECONDS):
                # closed meanwhile: the resume finds out, and redrives it or goes on
                with contextlib.suppress(ClientError):
                    self.sfn.stop_execution(
                        executionArn=self.arn,
                        error=STOPPED_ERROR,
                        cause=f"runbook stop ({self.ctx.operator or 'operator'})",
                    )
                self.sent.set()
                return


def map_counts(run: dict[str, Any] | None) -> MapCounts:
    got = (run or {}).get("itemCounts", {})
    return MapCounts(
        total=int(got.get("total", 0)),
        succeeded=int(got.get("succeeded", 0)),
        failed=int(got.get("failed", 0)),
        running=int(got.get("running", 0)),
        pending=int(got.get("pending", 0)),
        aborted=int(got.get("aborted", 0)),
        timed_out=int(got.get("timedOut", 0)),
    )


def follow(ctx: ActionContext, p: MigrateParams, e: EntitySpec, s: SfnCursor) -> str:
    """Until the execution closes: its map run's item counts onto the progress bar; returns
    its last status. A stop stops the execution (StopWatch); it is redriven on resume."""
    sfn = ctx.client("stepfunctions")
    runs = sfnx.NestedMapRuns(sfn, FILES_LABEL)
    with StopWatch(ctx, sfn, s.execution_arn) as watch:
        try:
            while True:
                status = str(sfn.describe_execution(executionArn=s.execution_arn)["status"])
                outer, items = runs.poll(s.execution_arn)
                if outer is not None:
                    s.map_run_arn = str(outer["mapRunArn"])
                    files = map_counts(outer)
                    if files.succeeded != s.file_counts.succeeded:  # a file done: said once
                        done_files = f"{files.succeeded:,} of {files.total:,}"
                        ctx.log(f"{e.name}: {done_files} data files copied")
                    s.file_counts = files
                    s.counts = map_counts({"itemCounts": items})
                c = s.counts
                done = c.succeeded + c.failed + c.timed_out
                ctx.progress(e.source, done, max(c.total, s.reader_items))
                ctx.checkpoint()
                if status != sfnx.RUNNING:
                    return status
                ctx.clock.sleep_real(p.poll_seconds)
        except Interrupted:
            s.stopped = True  # ABORTED soon: the resume waits for it, then redrives it
            ctx.checkpoint(force=True)
            watch.thread.join(STOP_JOIN_SECONDS)  # the StopExecution answered, as a rule
            ctx.log(f"{e.name}: execution stopped; `runbook run` redrives it")
            raise


def stopped_by_us(sfn: Any, arn: str) -> bool:
    """ABORTED by this step's StopExecution (an earlier session's, even one abandoned before
    it could journal it). moto 5.2.6 keeps no error of a StopExecution: an ABORTED execution
    without one counts as ours."""
    desc = sfn.describe_execution(executionArn=arn)
    return desc.get("status") == "ABORTED" and desc.get("error") in (STOPPED_ERROR, None, "")


def check_done(ctx: ActionContext, e: EntitySpec, s: SfnCursor, status: str) -> None:
    """Every item of the reader's input done, or CopyFailed (`runbook run` redrives)."""
    c = s.counts
    bad = c.failed + c.timed_out + c.aborted
    if status == "SUCCEEDED" and not bad and c.succeeded >= s.reader_items:
        return
    desc = ctx.client("stepfunctions").describe_execution(executionArn=s.execution_arn)
    why = desc.get("cause") or desc.get("error") or ""
    if status == "SUCCEEDED":  # an emulator that ignores ToleratedFailureCount: 0
        s.attempt += 1
        s.execution_arn = ""
    ctx.checkpoint(force=True)
    f = s.file_counts
    raise CopyFailed(
        f"{e.name}: execution {status}: {c.succeeded:,} of {s.reader_items:,} items done, "
        f"{bad:,} failed; {f.succeeded:,} of {f.total:,} data files done, "
        f"{f.failed + f.timed_out + f.aborted:,} failed {why}".rstrip()
        + "; `runbook run` redrives it"
    )
