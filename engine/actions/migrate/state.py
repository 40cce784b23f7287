"""The resume state and summaries of the data actions in engine/actions/migrate/entity.py and
migrate_rollback.py."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict

from engine.state.records import Cursors, Record, Summary


class SegmentCursor(Record):
    """One parallel-scan segment: the key after its last applied page, or done."""

    key: dict[str, Any] | None = None  # LastEvaluatedKey, low-level attribute values
    done: bool = False


class MigrateCounts(Record):
    scanned: int = 0
    migrated: int = 0
    skipped_newer: int = 0
    written_alone: int = 0  # items a failed transaction sent back to PutItem
    conflicts: int = 0  # writes that met a TransactionConflict (an application write), retried


class CapacityTotals(Record):
    """What the step consumed of its budget, carried across a resume (the summary's totals
    would otherwise count only the last run of the step)."""

    consumed_wcu: float = 0.0
    consumed_rcu: float = 0.0
    budget_halvings: int = 0
    peak_wcu: dict[str, float] = {}  # the hottest companies' peak WCU/s, a few at most
    peak_items: dict[str, float] = {}


class MapCounts(Record):
    """The last item counts of the copy's map runs (DescribeMapRun), as journaled: the items
    (every file's map run, summed), or the data files (the outer map run)."""

    total: int = 0
    succeeded: int = 0
    failed: int = 0
    running: int = 0
    pending: int = 0
    aborted: int = 0
    timed_out: int = 0


class SfnCursor(Record):
    """The step-functions backend's resume state: ARNs and counts, never per-item state."""

    export_arn: str = ""
    export_manifest: str = ""  # ExportManifest (AWS); moto writes none
    reader_items: int = 0  # items the reader's input holds
    state_machine_arn: str = ""
    execution_arn: str = ""
    attempt: int = 0  # a new execution only where the endpoint cannot redrive (moto)
    redrives: int = 0
    stopped: bool = False  # this step stopped it (StopExecution): a resume redrives it
    map_run_arn: str = ""  # the outer map run's (one item per data file)
    counts: MapCounts = MapCounts()  # the items', summed over the files' map runs
    file_counts: MapCounts = MapCounts()  # the data files'


class MigrateCursors(Cursors):
    total_segments: int | None = None
    segments: dict[str, SegmentCursor] = {}  # segment number (as text) -> its cursor
    counts: MigrateCounts = MigrateCounts()
    source_total: int = 0
    capacity: CapacityTotals = CapacityTotals()
    sfn: SfnCursor | None = None  # backend = "step-functions"


class MigrateSummary(Summary):
    entity: str = ""
    source_total: int = 0
    scanned: int = 0
    migrated: int = 0
    skipped_newer: int = 0
    collisions: int = 0
    quarantined: int = 0
    rejected_by_target: int = 0  # of the quarantined: the target table cannot hold them
    segments: int = 0
    artifacts: list[str] = []


class EntityScan(Record):
    """A resumable filtered scan of one entity's table, and what it applied."""

    key: dict[str, Any] | None = None
    done: bool = False
    count: int = 0


class EntityScans(Cursors):
    """One EntityScan per entity, keyed by the entity's name (as journals have always kept it)."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, EntityScan]

    def entity(self, name: str) -> EntityScan:
        extra = self.__pydantic_extra__
        assert extra is not None  # extra="allow"
        return extra.setdefault(name, EntityScan())

    def count(self, name: str) -> int:
        return self.entity(name).count


class RemoveMigratedSummary(Summary):
    removed: int = 0
    entities: dict[str, int] = {}


class ResyncCursors(EntityScans):
    skipped: int = 0
    duplicate_keys: int = 0


class ResyncSummary(Summary):
    resynced: int = 0
    entities: dict[str, int] = {}
    skipped: int = 0
    duplicate_keys: int = 0
