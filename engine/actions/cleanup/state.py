"""The resume state and summaries of the Phase 5 deletions (engine/actions/cleanup_*.py), and the
typed reads the restores, the snapshot and the report make of them."""

from __future__ import annotations

from engine.state.journal import Journal
from engine.state.records import Cursors, Summary
from engine.state.resume import cursors_of, summary_of


class StagesCursors(Cursors):
    """A redeployment of every stage: one deployment, then each stage moved to it."""

    deployment_id: str | None = None
    stages_redeployed: list[str] = []


class DeleteFunctionsCursors(Cursors):
    archive_dir: str | None = None  # folder name under the artifacts
    deleted: list[str] = []  # names this step deleted
    already_absent: list[str] = []
    log_groups_deleted: list[str] = []
    code_missing: list[str] = []  # functions whose code package could not be archived


class DeleteFunctionsSummary(Summary):
    deleted: list[str] = []
    already_absent: list[str] = []
    log_groups_deleted: int = 0
    code_missing: list[str] = []


class DeleteRoutesCursors(StagesCursors):
    archive_dir: str | None = None
    api_id: str | None = None
    archive: str | None = None  # file name of the API's archive in archive_dir
    deleted_routes: list[str] = []  # ["GET /expenses", ...]
    deleted_resources: list[str] = []  # paths


class DeleteRoutesSummary(Summary):
    api: str = ""
    deleted_routes: list[str] = []
    deleted_resources: list[str] = []
    stages_redeployed: list[str] = []


class DeleteTablesCursors(Cursors):
    archive_dir: str | None = None
    deleted: list[str] = []  # names this step deleted
    already_absent: list[str] = []
    backups: dict[str, str] = {}  # table -> the final backup's ARN it was deleted with
    protection_disabled: list[str] = []


class DeleteTablesSummary(Summary):
    deleted: list[str] = []
    already_absent: list[str] = []
    protection_disabled: list[str] = []


def function_deletions_of(journal: Journal, step_id: str) -> DeleteFunctionsCursors:
    """What a delete_functions step deleted and archived (empty if it never ran)."""
    return cursors_of(journal, step_id, DeleteFunctionsCursors) or DeleteFunctionsCursors()


def route_deletions_of(journal: Journal, step_id: str) -> DeleteRoutesCursors:
    """What a delete_api_routes step deleted and archived (empty if it never ran)."""
    return cursors_of(journal, step_id, DeleteRoutesCursors) or DeleteRoutesCursors()


def table_deletions_of(journal: Journal, step_id: str) -> DeleteTablesCursors:
    """What a delete_tables step deleted, and the backups it deleted them with."""
    return cursors_of(journal, step_id, DeleteTablesCursors) or DeleteTablesCursors()


def code_missing_of(journal: Journal, step_id: str) -> list[str]:
    """Functions a delete_functions step deleted (or is deleting) without their code archived."""
    state = journal.steps.get(step_id)
    where = f"steps.{step_id}.summary"
    summary = summary_of(state, DeleteFunctionsSummary, where)
    if summary and summary.code_missing:
        return list(summary.code_missing)
    return list(function_deletions_of(journal, step_id).code_missing)
