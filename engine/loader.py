"""Load a runbook file and report every problem with its file, line and field path."""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.model import Problem, Runbook

DEFAULT_RUNBOOK = "company-scoped-migration.toml"
_SLOT = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")
_TOML_POS = re.compile(r"\(at line (\d+), column \d+\)")


class RunbookInvalid(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(p.render() for p in problems))


@dataclass(frozen=True)
class LoadedRunbook:
    runbook: Runbook
    path: Path
    sha256: str
    warnings: list[Problem]


def default_runbook_path() -> Path:
    return Path(str(resources.files("runbooks") / DEFAULT_RUNBOOK))


class _Locator:
    """Maps a field path (steps[3].params.tables) to a line of the TOML text."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def line_of(self, path: tuple[Any, ...]) -> int | None:
        start, end = 0, len(self.lines)
        prefix = ""
        i = 0
        while i < len(path):
            part = path[i]
            if isinstance(part, str) and i + 1 < len(path) and isinstance(path[i + 1], int):
                header = f"[[{prefix}{part}]]"
                hits = [n for n in range(start, end) if self.lines[n].strip() == header]
                index = path[i + 1]
                if index >= len(hits):
                    return self._key_line(part, start, end)
                start = hits[index]
                following = [
                    n for n in range(start + 1, end) if self.lines[n].lstrip().startswith("[")
                ]
                end = following[0] if following else end
                prefix = ""
                i += 2
                continue
            if isinstance(part, str):
                found = self._key_line(part, start, end)
                if found is None:
                    return start + 1 if start else None
                start = found - 1
                prefix = ""
            i += 1
        return start + 1

    def _key_line(self, key: str, start: int, end: int) -> int | None:
        pattern = re.compile(rf"^\s*(\[)?{re.escape(key)}\s*(=|\])")
        for n in range(start, end):
            if pattern.match(self.lines[n]):
                return n + 1
        return None


def _loc_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_runbook(path: Path) -> LoadedRunbook:
    """Parse, validate and cross-check. Raises RunbookInvalid listing every error."""
    file = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RunbookInvalid(
            [Problem(severity="error", path="", message=str(exc), file=file)]
        ) from exc
    text = raw.decode("utf-8", errors="replace")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_POS.search(str(exc))
        line = int(match.group(1)) if match else None
        problem = Problem(severity="error", path="(toml)", message=str(exc), line=line, file=file)
        raise RunbookInvalid([problem]) from exc

    locator = _Locator(text)
    try:
        runbook = Runbook.model_validate(data)
    except ValidationError as exc:
        problems = [
            Problem(
                severity="error",
                path=_loc_path(err["loc"]),
                message=err["msg"],
                line=locator.line_of(tuple(err["loc"])),
                file=file,
            )
            for err in exc.errors()
        ]
        raise RunbookInvalid(problems) from exc

    problems = [
        Problem(
            severity=sev, path=_loc_path(loc), message=msg, line=locator.line_of(loc), file=file
        )
        for sev, loc, msg in cross_check(runbook)
    ]
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise RunbookInvalid(problems)
    return LoadedRunbook(runbook, path, hashlib.sha256(raw).hexdigest(), problems)


Finding = tuple[str, tuple[Any, ...], str]


def cross_check(rb: Runbook) -> list[Finding]:
    """Semantic problems pydantic cannot see: references, names, params, plan discrepancies."""
    from engine.actions import registry as actions
    from engine.checks import registry as checks

    out: list[Finding] = []
    phase_ids = {p.id for p in rb.phases}
    day_ids = {d.id for d in rb.days}
    gate_ids = {g.id for g in rb.gates}
    step_ids = {s.id for s in rb.steps}
    entity_names = {e.name for e in rb.entities}

    for kind, ids in (
        ("steps", [s.id for s in rb.steps]),
        ("gates", [g.id for g in rb.gates]),
        ("phases", [p.id for p in rb.phases]),
        ("rollbacks", [r.id for r in rb.rollbacks]),
    ):
        for dup, n in Counter(ids).items():
            if n > 1:
                out.append(("error", (kind, ids.index(dup), "id"), f"duplicate id {dup!r}"))

    for i, phase in enumerate(rb.phases):
        if phase.day not in day_ids:
            out.append(("error", ("phases", i, "day"), f"unknown day {phase.day!r}"))

    for i, step in enumerate(rb.steps):
        at = ("steps", i)
        if step.phase not in phase_ids:
            out.append(("error", (*at, "phase"), f"unknown phase {step.phase!r}"))
        if not _SLOT.match(step.slot) or step.slot_start > step.slot_end:
            out.append(("error", (*at, "slot"), f"slot {step.slot!r} is not HH:MM-HH:MM"))
        if step.requires_gate and step.requires_gate not in gate_ids:
            out.append(("error", (*at, "requires_gate"), f"unknown gate {step.requires_gate!r}"))
        if step.kind == "manual":
            if step.action:
                out.append(("error", (*at, "action"), "a manual step has no action"))
            continue
        if step.destructive and not step.requires_gate:
            out.append(("warning", (*at, "requires_gate"), "destructive step not tied to a gate"))
        out += _check_action(rb, at, step.action, step.params, actions())

    for i, gate in enumerate(rb.gates):
        at = ("gates", i)
        anchors = [p for p in (gate.before_phase, gate.after_phase) if p]
        if len(anchors) != 1:
            out.append(("error", at, "a gate needs exactly one of before_phase / after_phase"))
        for anchor in anchors:
            if anchor not in phase_ids:
                out.append(("error", (*at, "before_phase"), f"unknown phase {anchor!r}"))
        for j, item in enumerate(gate.items):
            item_at = (*at, "items", j)
            if item.kind == "manual":
                continue
            check = checks().get(item.check or "")
            if check is None:
                out.append(("error", (*item_at, "check"), f"unknown check {item.check!r}"))
                continue
            try:
                check.params.model_validate(item.params)
            except ValidationError as exc:
                out += [("error", (*item_at, "params"), _msg(e)) for e in exc.errors()]
            ref = item.params.get("step")
            if ref and ref not in step_ids:
                out.append(("error", (*item_at, "params"), f"unknown step {ref!r}"))

    for i, rollback in enumerate(rb.rollbacks):
        at = ("rollbacks", i)
        for phase in rollback.phases:
            if phase not in phase_ids:
                out.append(("error", (*at, "phases"), f"unknown phase {phase!r}"))
        for step_id in rollback.undoes:
            if step_id not in step_ids:
                out.append(("error", (*at, "undoes"), f"unknown step {step_id!r}"))
        for j, rstep in enumerate(rollback.steps):
            out += _check_action(rb, (*at, "steps", j), rstep.action, rstep.params, actions())

    for i, entity in enumerate(rb.entities):
        for attr, target in entity.relations.items():
            if target not in entity_names:
                out.append(("error", ("entities", i, "relations"), f"{attr} -> unknown {target!r}"))

    out += _plan_discrepancies(rb)
    return out


def _msg(err: Any) -> str:
    where = _loc_path(err["loc"])
    return f"{where}: {err['msg']}" if where else err["msg"]


def _check_action(
    rb: Runbook, at: tuple[Any, ...], name: str | None, params: dict[str, Any], actions: Any
) -> list[Finding]:
    action = actions.get(name or "")
    if action is None:
        known = ", ".join(sorted(actions))
        return [("error", (*at, "action"), f"unknown action {name!r} (known: {known})")]
    try:
        action.params.model_validate(params)
    except ValidationError as exc:
        return [("error", (*at, "params"), _msg(e)) for e in exc.errors()]
    return []


def step_window(rb: Runbook, step_id: str) -> tuple[datetime, datetime]:
    """A step's slot on the plan's timeline, relative to an arbitrary Day 1."""
    step = rb.step(step_id)
    day = rb.day(rb.phase(step.phase).day)
    base = datetime(2000, 1, 1) + timedelta(days=day.offset_days)
    start = datetime.strptime(step.slot_start, "%H:%M").time()
    end = datetime.strptime(step.slot_end, "%H:%M").time()
    return datetime.combine(base.date(), start), datetime.combine(base.date(), end)


def gate_time(rb: Runbook, gate_id: str) -> datetime:
    gate = rb.gate(gate_id)
    phase = gate.before_phase or gate.after_phase
    steps = [s.id for s in rb.steps if s.phase == phase]
    if gate.before_phase:
        return min(step_window(rb, s)[0] for s in steps)
    return max(step_window(rb, s)[1] for s in steps)


def _plan_discrepancies(rb: Runbook) -> list[Finding]:
    """Where the plan contradicts itself: keep its checks as written, but say so."""
    out: list[Finding] = []
    step_ids = {s.id for s in rb.steps}
    gate_ids = {g.id for g in rb.gates}
    for i, claim in enumerate(rb.timing_claims):
        if claim.from_step not in step_ids or claim.to_gate not in gate_ids:
            out.append(("error", ("timing_claims", i), "names a missing step or gate"))
            continue
        available = gate_time(rb, claim.to_gate) - step_window(rb, claim.from_step)[1]
        hours = available.total_seconds() / 3600
        if hours < claim.hours:
            out.append(
                (
                    "warning",
                    ("timing_claims", i, "hours"),
                    f"plan discrepancy: '{claim.text}' needs {claim.hours:g} h, but the timeline "
                    f"leaves {hours:g} h between the end of {claim.from_step} and {claim.to_gate}",
                )
            )
    measurable = {
        "tables_removed": len(rb.inventory.select_tables("@deprecated")),
        "functions_removed": len(rb.inventory.select_functions("@deprecated")),
    }
    for i, crit in enumerate(rb.success_criteria):
        actual = measurable.get(crit.measure)
        if crit.expected is not None and actual is not None and actual != crit.expected:
            out.append(
                (
                    "warning",
                    ("success_criteria", i, "expected"),
                    f"plan discrepancy: '{crit.text}' states {crit.expected:g}, but the inventory "
                    f"marks {actual} as deprecated",
                )
            )
    return out
