"""The mapping in effect, journaled at first use, so a resume never maps a user differently.

A resume that silently dropped `--mapping-overrides` once wrote 200 expenses under a second
company. Now the first step that resolves users journals the override file's sha256 and the
resolved overrides (`journal.mapping`); later runs use that record whatever the command line
says, and a *different* override file is refused until the steps that wrote with the recorded
mapping are rolled back.
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Any

from engine.runbook.model import Runbook
from engine.state.journal import Journal

# steps that write to the live tables with the mapping: once they ran, it cannot change
WRITERS = {"migrate_entity", "resync_legacy", "remove_migrated_items"}
APPLIED = ("done", "running")
# steps whose result depends on the mapping (they hold it); traffic watches only read with it
HOLDERS = {"company_mapping", "analyze_legacy", "migrate_entity", "validate_migration"}


class MappingChanged(Exception):
    """The override file differs from the mapping the run already wrote with (exit 2)."""


def read_override_file(path: Path) -> tuple[str, dict[str, str]]:
    """(sha256 of the file's bytes, [users] overrides). A bad file is a ValueError."""
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a valid TOML overrides file ({exc})") from exc
    users = data.get("users", {})
    if not isinstance(users, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in users.items()
    ):
        raise ValueError(f"{path}: [users] must map user ids to company ids (strings)")
    return hashlib.sha256(raw).hexdigest(), dict(users)


def _writer(runbook: Runbook, step_id: str) -> bool:
    step = runbook.find_step(step_id)
    if step is None:
        return False
    return step.action in WRITERS or (
        step.action == "company_mapping" and bool(step.params.get("apply"))
    )


def steps_holding(journal: Journal, runbook: Runbook, current: str | None = None) -> list[str]:
    """Steps that applied something with the recorded mapping (not rolled back since). The
    step now running holds it only if it writes with it (a resumed migration does; a mapping
    document re-run after its conflicts were resolved does not)."""
    out = []
    for step_id in journal.mapping.get("used_by", []):
        state = journal.steps.get(step_id)
        if state is None or (step_id == current and not _writer(runbook, step_id)):
            continue
        if state.status in APPLIED or (state.status == "failed" and _writer(runbook, step_id)):
            out.append(step_id)
    return out


def refuse_if_changed(
    journal: Journal, runbook: Runbook, path: Path, explicit: bool, current: str | None = None
) -> dict[str, str] | None:
    """The journaled overrides when the record holds; raises MappingChanged when the file at
    `path` says otherwise. None when no step holds the record (a new one may be taken)."""
    holding = steps_holding(journal, runbook, current)
    if not holding:
        return None
    recorded = journal.mapping
    if path.is_file():
        sha, _ = read_override_file(path)
        if sha != recorded.get("sha256"):
            raise MappingChanged(
                f"the mapping overrides in {path} differ from the mapping this run already used "
                f"(sha256 {str(recorded.get('sha256') or 'none')[:12]} from "
                f"{recorded.get('source') or 'no overrides file'}) in {', '.join(holding)}; "
                "roll those steps back first, or run without this file"
            )
    elif explicit:
        raise MappingChanged(f"--mapping-overrides {path}: no such file")
    return dict(recorded.get("overrides", {}))


def overrides_for_step(
    journal: Journal, runbook: Runbook, step_id: str, path: Path, explicit: bool
) -> dict[str, str]:
    """The overrides a step resolves users with; journals the mapping at its first use."""
    held = refuse_if_changed(journal, runbook, path, explicit, current=step_id)
    if held is not None:
        overrides = held
    else:
        sha, overrides = read_override_file(path) if path.is_file() else ("", {})
        if journal.mapping.get("sha256", "") != sha or "overrides" not in journal.mapping:
            journal.mapping = {
                "sha256": sha,
                "source": str(path) if sha else "",
                "overrides": dict(sorted(overrides.items())),
                "used_by": [],
            }
    used_by: list[str] = journal.mapping.setdefault("used_by", [])
    holder = any(s.id == step_id and s.action in HOLDERS for s in runbook.steps)
    if step_id not in used_by and holder:
        used_by.append(step_id)
    return overrides


def describe(record: dict[str, Any]) -> str:
    n = len(record.get("overrides", {}))
    return f"{n} override(s) from {record.get('source') or 'no file'}"
