"""The parameters of migrate_entity (runbook data, validated once by the loader): the local
backend's pipeline (engine/actions/migrate/entity.py) and the step-functions backend's export
and Distributed Map (engine/actions/migrate/sfn_backend.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.actions.migrate.write import MAX_TRANSACT_ITEMS

TRANSACT_IN_FLIGHT = 2  # transactions per segment: up to 200 items in flight
PUT_IN_FLIGHT = 16  # PutItems per segment
DUAL_WRITE_TRANSACT_ITEMS = 10  # transact_size_dual_write's default: few items held at once
SFN_ONLY = (
    "bucket",
    "prefix",
    "batch_size",
    "max_concurrency",
    "files_in_flight",
    "child_type",
    "poll_seconds",
)
MAX_BATCH_ITEMS = 1000  # a child's batch (ItemBatcher); its input stays within 256 KB
MAX_CHILDREN = 10_000  # a Distributed Map's child executions in parallel (AWS quota)
MAX_OPEN_MAP_RUNS = 1000  # open map runs an account may have (AWS quota): one per file in flight


class MigrateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entity: str
    segments: int = Field(default=1, ge=1, le=64)
    max_workers: int | None = Field(default=None, ge=1)  # concurrent segments; None: all
    # write requests in flight per segment scanned at once (K): PutItems, or transactions of
    # up to `transact_size` items; the step shares one window of K x segments, so an uneven
    # split still fills it; the operator may set the window during a run
    # (Engine.write_throttle.set_limit); capped by the HTTP pool
    in_flight: int = Field(default=TRANSACT_IN_FLIGHT, ge=1, le=256)
    # items per scan page (Limit; DynamoDB's 1 MB still caps it): with PAGES_AHEAD pages alive
    # per segment, memory is bounded by this, not by the table, nor by item size
    page_size: int | None = Field(default=1000, ge=1)
    # "transact" (chosen by measurement): TransactWriteItems of up to `transact_size`
    # conditional Puts, 100-fold fewer requests, 2 WCU per item; "put": a conditional PutItem
    # per item, 1 WCU, for hot partitions on provisioned capacity (docs/performance.md)
    write_path: Literal["put", "transact"] = "transact"
    transact_size: int = Field(default=MAX_TRANSACT_ITEMS, ge=1, le=MAX_TRANSACT_ITEMS)
    # while the application dual-writes (the runbook's dual-write flag last set "true"), an
    # application write to an item inside one of these transactions fails for the application
    # (TransactionConflictException): transactions are then at most this many items
    transact_size_dual_write: int = Field(
        default=DUAL_WRITE_TRANSACT_ITEMS, ge=1, le=MAX_TRANSACT_ITEMS
    )
    # this step's share of the tables' capacity; None: the runbook's `capacity.share`
    # (`runbook throttle --capacity-share` overrides both during a run)
    capacity_share: float | None = Field(default=None, gt=0, le=1)
    # "local": this process's pipeline (the default); "step-functions": a DynamoDB export to
    # S3 and a Step Functions Distributed Map on AWS's own engine (docs/performance.md)
    backend: Literal["local", "step-functions"] = "local"
    # step-functions: the export, the reader's input, the mapping objects, the outcomes and
    # the ResultWriter's files live in this bucket under <prefix>/<run and step>/
    bucket: str | None = Field(default=None, min_length=3, max_length=63)
    prefix: str = Field(default="runbook-console", pattern=r"^[A-Za-z0-9_.=/-]{1,200}$")
    # items per child execution (ItemBatcher; 1: no batcher, as moto needs)
    batch_size: int = Field(default=1, ge=1, le=MAX_BATCH_ITEMS)
    # children in parallel, the step's whole: shared by the data files in flight
    max_concurrency: int = Field(default=1000, ge=1, le=MAX_CHILDREN)
    # the export's data files copied at once (each its own map run)
    files_in_flight: int = Field(default=10, ge=1, le=MAX_OPEN_MAP_RUNS - 1)
    # the children's workflow type: EXPRESS (billed by duration) or STANDARD (by transition)
    child_type: Literal["STANDARD", "EXPRESS"] = "EXPRESS"
    poll_seconds: float = Field(default=5.0, gt=0, le=300)  # DescribeExecution/MapRun cadence

    @model_validator(mode="after")
    def _backend_needs(self) -> MigrateParams:
        if self.backend == "step-functions" and not self.bucket:
            raise ValueError('backend "step-functions" needs `bucket` (the export\'s S3 bucket)')
        if self.backend == "local":
            given = sorted(n for n in SFN_ONLY if n in self.model_fields_set)
            if given:
                raise ValueError(f'{", ".join(given)}: only for backend = "step-functions"')
        return self

    @model_validator(mode="before")
    @classmethod
    def _window_of_the_path(cls, data: Any) -> Any:
        """Unless the runbook sets `in_flight`, the path's own: a PutItem carries one item,
        so it needs more requests in flight than a transaction of 100."""
        if isinstance(data, dict) and "in_flight" not in data and data.get("write_path") == "put":
            return {**data, "in_flight": PUT_IN_FLIGHT}
        return data
