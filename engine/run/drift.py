"""Flags the journal believes in vs flags live on the functions.

Two ways the journal and the live flags part company:
- a rollback re-runs an early flag step (e.g. `deploy-feature-flags` sets DUAL_WRITE_ENABLED
  back to "false") while a later flag step on the same variable stays done: its effect is
  overwritten by the re-run, so the rollback must reopen it (`reopen_overwritten`);
- someone changes a flag by hand between runs: on resume the engine reads the live values and
  waits for a human when they differ from what the journal expects (`flag_drift`).
Only flag variables (runbook.flags.names()) are ever read out; other variables may be secrets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.actions.traffic.flags import flag_changes_of, resolve_functions
from engine.runbook.model import Runbook, Step
from engine.state.journal import Journal, StepState

Pair = tuple[str, str]  # (function, flag variable)
FLAG_ACTIONS = ("set_flags", "shift_reads")


def flag_values(rb: Runbook, step: Step) -> dict[str, str]:
    """The flag values a flag step sets (from its params; no I/O)."""
    if step.action == "set_flags":
        return {str(k): str(v) for k, v in dict(step.params.get("values", {})).items()}
    if step.action == "shift_reads":
        return {
            rb.flags.read_company_scoped: "true",
            rb.flags.read_percent: str(step.params.get("percent")),
        }
    return {}


def _functions(rb: Runbook, step: Step) -> list[str]:

    selectors = step.params.get("functions")
    return resolve_functions(rb, list(selectors) if selectors is not None else None)


def flag_pairs(rb: Runbook, step: Step) -> set[Pair]:
    values = flag_values(rb, step)
    return {(fn, var) for fn in _functions(rb, step) for var in values} if values else set()


def _ordered_flag_steps(rb: Runbook) -> list[Step]:
    ids = [node_id for kind, node_id in rb.sequence() if kind == "step"]
    return [s for s in (rb.step(i) for i in ids) if s.action in FLAG_ACTIONS]


def reopen_overwritten(rb: Runbook, journal: Journal, by: str) -> list[str]:
    """Reopen every done flag step that comes after a step the next run will re-run and sets a
    variable of the same function: the re-run overwrites it, so it must run again too."""
    steps = _ordered_flag_steps(rb)
    reopened: list[str] = []
    changed = True
    while changed:  # a reopened step re-runs as well: repeat until nothing more is reopened
        changed = False
        for i, rerun in enumerate(steps):
            state = journal.steps.get(rerun.id)
            if state is None or state.status != "rolled_back":  # it will run again
                continue
            pairs = flag_pairs(rb, rerun)
            for later in steps[i + 1 :]:
                later_state = journal.steps.get(later.id)
                if later_state is None or later_state.status != "done":
                    continue
                overlap = sorted(pairs & flag_pairs(rb, later))
                if not overlap:
                    continue
                fn, var = overlap[0]
                journal.add_audit(
                    by,
                    f"step {later.id} reopened: the re-run of {rerun.id} overwrites {var} on "
                    f"{fn}" + (f" and {len(overlap) - 1} more" if len(overlap) > 1 else ""),
                )
                journal.steps[later.id] = StepState(
                    status="rolled_back", attempts=later_state.attempts
                )
                reopened.append(later.id)
                changed = True
    return reopened


def expected_flags(rb: Runbook, journal: Journal) -> dict[Pair, tuple[str, str]]:
    """(function, variable) -> (value, step that set it), from done flag steps in run order."""
    out: dict[Pair, tuple[str, str]] = {}
    for step in _ordered_flag_steps(rb):
        state = journal.steps.get(step.id)
        if state is None or state.status != "done":
            continue
        values = flag_values(rb, step)
        for fn in _functions(rb, step):
            for var, value in values.items():
                out[(fn, var)] = (value, step.id)
    return out


def _tolerated(rb: Runbook, journal: Journal) -> dict[Pair, set[str | None]]:
    """Values a step that started but did not finish may have left (its own, or the prior)."""
    out: dict[Pair, set[str | None]] = {}
    for step in _ordered_flag_steps(rb):
        state = journal.steps.get(step.id)
        if state is None or state.status not in ("running", "failed"):
            continue
        values = flag_values(rb, step)
        for fn, entry in flag_changes_of(journal, step.id).items():
            for var, value in values.items():
                seen = out.setdefault((fn, var), set())
                seen.add(value)
                seen.add(entry.prior.get(var))
    return out


def flag_drift(rb: Runbook, journal: Journal, clients: Callable[[str], Any]) -> str | None:
    """A one-line description of the first live flag that differs from the journal, or None."""
    if any(r.status != "done" for r in journal.rollbacks):
        return None  # a rollback is under way: the flags are between two journaled states
    expected = expected_flags(rb, journal)
    if not expected:
        return None
    tolerated = _tolerated(rb, journal)
    lam = clients("lambda")
    live: dict[str, dict[str, str] | None] = {}
    for (fn, var), (value, step_id) in sorted(expected.items()):
        if fn not in live:
            try:
                conf = lam.get_function_configuration(FunctionName=fn)
                live[fn] = dict(conf.get("Environment", {}).get("Variables", {}) or {})
            except lam.exceptions.ResourceNotFoundException:
                live[fn] = None  # deleted by the cleanup: nothing left to drift
            except Exception as exc:  # cannot tell: a human decides rather than guessing
                return f"cannot read the live flags of {fn} to compare with the journal ({exc})"
        env = live[fn]
        if env is None:
            continue
        actual = env.get(var)
        if actual == value or actual in tolerated.get((fn, var), set()):
            continue
        shown = "(absent)" if actual is None else repr(actual)
        return (
            f"flag drift: {fn} {var} is {shown} live, but the journal expects {value!r} "
            f"(set by {step_id}). Put it back, or run the rollback, then `runbook run` again"
        )
    return None
