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

from pydantic import BaseModel, ValidationError

from engine.actions import registry as actions
from engine.checks import registry as checks
from engine.runbook.model import Bound, Problem, RollbackStep, Runbook, Step, auto_rollback_for
from engine.runbook.selector import Selector

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
    except RecursionError:  # tomllib recurses once per level of nesting
        problem = Problem(
            severity="error",
            path="(toml)",
            message="arrays or tables nested too deeply to read (a runbook needs a few levels)",
            file=file,
        )
        raise RunbookInvalid([problem]) from None

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
        out += _check_action(at, step, actions())
        action = actions().get(step.action or "")
        if action is not None and action.check is not None and step.is_bound:
            out += [("error", (*at, "params"), why) for why in action.check(rb, step.bound)]

    for i, gate in enumerate(rb.gates):
        at = ("gates", i)
        anchors = [p for p in (gate.before_phase, gate.after_phase) if p]
        if len(anchors) != 1:
            out.append(("error", at, "a gate needs exactly one of before_phase / after_phase"))
        for anchor in anchors:
            if anchor not in phase_ids:
                out.append(("error", (*at, "before_phase"), f"unknown phase {anchor!r}"))
        manual = [item for item in gate.items if item.kind == "manual"]
        if gate.min_approvals > len(manual):
            out.append(
                (
                    "error",
                    (*at, "min_approvals"),
                    f"{gate.min_approvals} distinct approvers need at least as many manual "
                    f"items to tick; the gate has {len(manual)}",
                )
            )
        if gate.approver_not_operator and not manual:
            out.append(
                ("error", (*at, "approver_not_operator"), "the gate has no manual item to tick")
            )
        for j, item in enumerate(gate.items):
            item_at = (*at, "items", j)
            if item.approvers and item.kind != "manual":
                out.append(("error", (*item_at, "approvers"), "only a manual item is ticked"))
            if item.kind == "manual":
                continue
            check = checks().get(item.check or "")
            if check is None:
                out.append(("error", (*item_at, "check"), f"unknown check {item.check!r}"))
                continue
            out += _bind(item, check.params, (*item_at, "params"))

    for i, rollback in enumerate(rb.rollbacks):
        at = ("rollbacks", i)
        for phase in rollback.phases:
            if phase not in phase_ids:
                out.append(("error", (*at, "phases"), f"unknown phase {phase!r}"))
        for step_id in rollback.undoes:
            if step_id not in step_ids:
                out.append(("error", (*at, "undoes"), f"unknown step {step_id!r}"))
        for j, rstep in enumerate(rollback.steps):
            out += _check_action((*at, "steps", j), rstep, actions())

    for i, entity in enumerate(rb.entities):
        for attr, target in entity.relations.items():
            if target not in entity_names:
                out.append(("error", ("entities", i, "relations"), f"{attr} -> unknown {target!r}"))

    out += _names_in_params(rb)
    out += _auto_rollbacks(rb)
    out += _plan_discrepancies(rb)
    return out


STEP_KEYS = ("step", "backup_step", "delete_step", "from_step")


def _select_problem(kind: str, selector: Any, names: set[str], groups: set[str]) -> str | None:
    """Why a table/function selector names nothing that exists, or None."""
    if not isinstance(selector, str):
        return None
    parsed = Selector.parse(selector)
    if parsed.kind == "group":
        return None if parsed.value in groups else f"unknown {kind} group {parsed.value!r}"
    if parsed.kind == "unknown":
        return f"unknown selector {selector!r} (use @all, @deprecated or @group:NAME)"
    if parsed.kind == "name":
        return None if selector in names else f"unknown {kind} {selector!r}"
    return None


WATCHING_ACTIONS = ("watch_window", "shift_reads")  # steps whose params name triggers


def _auto_rollbacks(rb: Runbook) -> list[Finding]:
    """A trigger may roll back on its own only where its proposed rollback is not destructive
    (reads back, dual-write off): nobody confirms it at 2 a.m."""
    out: list[Finding] = []
    known = {t.id: t for t in rb.triggers}
    index = {t.id: j for j, t in enumerate(rb.triggers)}
    for i, step in enumerate(rb.steps):
        if step.action not in WATCHING_ACTIONS:
            continue
        setting = step.params.get("auto_rollback")
        ids = step.params.get("triggers")
        watched = [known[t] for t in (ids if isinstance(ids, list) else known) if t in known]
        for trigger in watched:
            setting_ = setting if isinstance(setting, bool) else None
            wanted, rollback = auto_rollback_for(rb, step.phase, trigger, setting_)
            if wanted and rollback is None:
                proposed = rb.rollback_for(step.phase)
                why = "is destructive" if proposed else "does not exist"
                where = (
                    ("steps", i, "params")
                    if setting_
                    else ("triggers", index[trigger.id], "auto_rollback")
                )
                out.append(
                    (
                        "error",
                        where,
                        f"auto_rollback: trigger {trigger.id!r} in step {step.id!r}: the rollback "
                        f"of phase {step.phase!r} {why}; only a non-destructive one may run "
                        "without a human",
                    )
                )
    return out


def _names_in_params(rb: Runbook) -> list[Finding]:
    """Every name inside params (and the sections that point at each other) must exist: a typo
    found here is an exit-2 line, not a late failure or a gate that can never pass."""
    out: list[Finding] = []
    steps = {s.id for s in rb.steps}
    entities = {e.name for e in rb.entities}
    triggers = {t.id for t in rb.triggers}
    tables = {t.name for t in rb.inventory.tables}
    table_groups = {t.group for t in rb.inventory.tables}
    functions = {f.name for f in rb.inventory.functions}
    function_groups = {f.group for f in rb.inventory.functions}
    flag_names = set(rb.flags.names())
    order = {node: i for i, node in enumerate(rb.sequence())}

    def names(at: tuple[Any, ...], params: dict[str, Any], action: str | None) -> None:
        where = (*at, "params")
        for key in STEP_KEYS:
            ref = params.get(key)
            if isinstance(ref, str) and ref not in steps:
                out.append(("error", where, f"{key}: unknown step {ref!r}"))
        for ref in params.get("steps", []) or []:
            if isinstance(ref, str) and ref not in steps:
                out.append(("error", where, f"steps: unknown step {ref!r}"))
        ent = params.get("entity")
        if isinstance(ent, str) and ent not in entities:
            out.append(("error", where, f"entity: unknown entity {ent!r}"))
        for ref in params.get("entities", []) or []:
            if isinstance(ref, str) and ref not in entities:
                out.append(("error", where, f"entities: unknown entity {ref!r}"))
        for ref in params.get("triggers", []) or []:
            if isinstance(ref, str) and ref not in triggers:
                out.append(("error", where, f"triggers: unknown trigger {ref!r}"))
        for sel in params.get("tables", []) or []:
            if problem := _select_problem("table", sel, tables, table_groups):
                out.append(("error", where, f"tables: {problem}"))
        for sel in params.get("functions", []) or []:
            if problem := _select_problem("function", sel, functions, function_groups):
                out.append(("error", where, f"functions: {problem}"))
        if action == "set_flags":
            for var in dict(params.get("values", {}) or {}):
                if var not in flag_names:
                    out.append(("error", where, f"values: {var!r} is not a flag of this runbook"))

    for i, step in enumerate(rb.steps):
        names(("steps", i), step.params, step.action)
    for i, rollback in enumerate(rb.rollbacks):
        for j, rstep in enumerate(rollback.steps):
            names(("rollbacks", i, "steps", j), rstep.params, rstep.action)
    for i, gate in enumerate(rb.gates):
        for j, item in enumerate(gate.items):
            at = ("gates", i, "items", j)
            names(at, item.params, None)
            ref = item.params.get("step")
            late = order.get(("step", str(ref)), -1) > order.get(("gate", gate.id), -1)
            if isinstance(ref, str) and ref in steps and late:
                out.append(
                    (
                        "error",
                        (*at, "params"),
                        f"step {ref!r} comes after gate {gate.id!r}: this check could never "
                        "pass when the gate is decided",
                    )
                )
    for i, fn in enumerate(rb.flags.functions):
        if fn not in functions:
            out.append(("error", ("flags", "functions"), f"[{i}] unknown function {fn!r}"))
    for i, entity in enumerate(rb.entities):
        for key in ("source", "target"):
            name = getattr(entity, key)
            if name not in tables:
                out.append(("error", ("entities", i, key), f"unknown table {name!r}"))
    if rb.mapping is not None:
        for key in ("company_users_table", "companies_table", "legacy_users_table"):
            name = getattr(rb.mapping, key)
            if name not in tables:
                out.append(("error", ("mapping", key), f"unknown table {name!r}"))
    for i, fspec in enumerate(rb.inventory.functions):
        if fspec.table and fspec.table not in tables:
            out.append(
                ("error", ("inventory", "functions", i, "table"), f"unknown table {fspec.table!r}")
            )
    return out


def _msg(err: Any) -> str:
    where = _loc_path(err["loc"])
    return f"{where}: {err['msg']}" if where else err["msg"]


def _check_action(at: tuple[Any, ...], node: Step | RollbackStep, actions: Any) -> list[Finding]:
    action = actions.get(node.action or "")
    if action is None:
        known = ", ".join(sorted(actions))
        return [("error", (*at, "action"), f"unknown action {node.action!r} (known: {known})")]
    return _bind(node, action.params, (*at, "params"))


def _bind(node: Bound, model: type[BaseModel], at: tuple[Any, ...]) -> list[Finding]:
    """The one place params are validated: the result is bound to the node (`node.bound`).
    A node bound already (a runbook checked again, for the report) is not validated again."""
    if node.is_bound:
        return []
    try:
        node.bind(model.model_validate(node.params))
    except ValidationError as exc:
        return [("error", at, _msg(e)) for e in exc.errors()]
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
