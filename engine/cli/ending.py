"""How a command's end is told: the outcome line, its exit code, and how to resume."""

from __future__ import annotations

from engine.cli.codes import OUTCOME_EXIT
from engine.cli.output import say, say_error
from engine.core.outcome import Outcome
from engine.core.views import RunSnapshot
from engine.run.status_text import gate_lines


def finish_outcome(outcome: Outcome, resume_hint: str, snapshot: RunSnapshot | None = None) -> int:
    """Say how the run or rollback ended; its exit code. `resume_hint`: the command that
    resumes it (CliContext.resume_hint)."""
    if outcome.status == "interrupted":
        say_error(f"interrupted; checkpoint saved. Resume with: {resume_hint}")
    elif outcome.status in ("waiting", "paused") and outcome.waiting:
        kind, node = outcome.waiting.kind, outcome.waiting.id
        if kind == "gate" and snapshot is not None:  # the commands that answer it, as status
            say(f"waiting at gate {node}: {outcome.message}. Next:")
            for line in gate_lines(snapshot.gate(node)):
                say(line)
        else:
            how = (
                f"runbook decide {node} --go|--no-go --by NAME"
                if kind == "gate"
                else f"runbook ack {node} --by NAME"
            )
            say(f"waiting at {kind} {node}: {outcome.message}. Next: {how}")
    elif outcome.message:
        (say_error if outcome.status != "done" else say)(outcome.message)
    return OUTCOME_EXIT[outcome.status]
