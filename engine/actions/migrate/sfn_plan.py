"""The step-functions backend seen without I/O: `runbook check` refuses a step whose transform
the state machine cannot express (one line), and `runbook plan` lists its calls and, for every
migrate step, both backends' estimates (estimate.py)."""

from __future__ import annotations

from engine.actions.analyze.legacy import source_keys, target_keys
from engine.actions.migrate.estimate import estimate, lines
from engine.actions.migrate.params import MigrateParams
from engine.actions.migrate.sfn_spec import CopySpec, refusal
from engine.aws.target_fit import (
    MAX_PARTITION_KEY_BYTES,
    MAX_SORT_KEY_BYTES,
    KeyAttribute,
    TargetShape,
)
from engine.core.context import PlannedCall
from engine.runbook.model import EntitySpec, Runbook

PLANNED_TS = "2000-01-01T00:00:00Z"  # a run's own timestamp is not known before it starts


def inventory_shape(rb: Runbook, e: EntitySpec) -> TargetShape:
    """The target's keys as the inventory declares them (index keys as strings, as the
    embedded world creates them); a run reads the real shape with DescribeTable."""
    pk, sk = target_keys(rb, e)
    keys = [
        KeyAttribute(pk, "S", "table partition key", MAX_PARTITION_KEY_BYTES, True),
        KeyAttribute(sk, "S", "table sort key", MAX_SORT_KEY_BYTES, True),
    ]
    spec = rb.find_table(e.target)
    for index in spec.gsi if spec else []:
        name = index.removesuffix("-index")
        keys.append(
            KeyAttribute(name, "S", f"index {index} partition key", MAX_PARTITION_KEY_BYTES, False)
        )
    return TargetShape(e.target, tuple(keys))


def planned_spec(rb: Runbook, p: MigrateParams, e: EntitySpec) -> CopySpec:
    base = f"{p.prefix.strip('/')}/{rb.runbook.id}/<run>/<step>"
    return CopySpec(
        entity=e,
        source_keys=tuple(source_keys(rb, e)),
        target_keys=target_keys(rb, e),
        shape=inventory_shape(rb, e),
        migration_ts=PLANNED_TS,
        bucket=p.bucket or "<bucket>",
        reader_prefix=f"{base}/reader/",
        files_prefix=f"{base}/export/AWSDynamoDB/<export>/data/",
        bridge_function="<the bridge function>",
        files_in_flight=p.files_in_flight,
        mapping_prefix=f"{p.prefix.strip('/')}/{rb.runbook.id}/mapping/",
        outcomes_prefix=f"{p.prefix.strip('/')}/{rb.runbook.id}/outcomes/",
        results_prefix=f"{base}/results",
        batch_size=p.batch_size,
        max_concurrency=p.max_concurrency,
        child_type=p.child_type,
    )


def check_step_functions(rb: Runbook, p: MigrateParams) -> list[str]:
    """`runbook check`: why this step cannot run on step-functions (empty when it can)."""
    if p.backend != "step-functions":
        return []
    e = rb.find_entity(p.entity)
    if e is None:
        return []  # the loader reports the unknown entity
    why = refusal(planned_spec(rb, p, e))
    return [f'backend "step-functions" cannot run entity {e.name}: {why}'] if why else []


def estimates(rb: Runbook, p: MigrateParams, e: EntitySpec) -> list[PlannedCall]:
    """Both backends' time (and the step-functions cost) for the entity's counted items."""
    table = rb.find_table(e.source)
    items = table.items if table else 0
    size = table.size_bytes if table else 0
    sized = p if p.backend == "step-functions" else MigrateParams(
        entity=p.entity, backend="step-functions", bucket="<bucket>", child_type="EXPRESS",
        batch_size=100,
    )  # fmt: skip
    est = estimate(planned_spec(rb, sized, e), items, size, rb.capacity.share)
    text = lines(est)
    chosen = "(chosen)"
    return [
        PlannedCall(
            "estimate",
            "local",
            f"{items:,} items",
            text["local"] + (f" {chosen}" if p.backend == "local" else ""),
        ),
        PlannedCall(
            "estimate",
            "step-functions",
            f"{items:,} items, {size / 1e9:,.3f} GB"
            + ("" if p.backend == "step-functions" else " (EXPRESS, batches of 100)"),
            text["step-functions"] + (f" {chosen}" if p.backend == "step-functions" else ""),
        ),
    ]


def plan_step_functions(rb: Runbook, p: MigrateParams, e: EntitySpec) -> list[PlannedCall]:
    """The calls of the step-functions backend."""
    spec = planned_spec(rb, p, e)
    where = f"s3://{spec.bucket}/{p.prefix.strip('/')}/{rb.runbook.id}/<run>/<step>"
    return [
        PlannedCall("dynamodb", "ExportTableToPointInTime", e.source, f"to {where}/export"),
        PlannedCall("dynamodb", "DescribeExport", e.source, "every 20 s until COMPLETED"),
        PlannedCall("s3", "PutObject", f"{where}/mapping/", "one object per mapped user"),
        PlannedCall(
            "lambda",
            "CreateFunction (or UpdateFunctionCode)",
            f"runbook-bridge-{rb.runbook.id}-{e.name}",
            "the bridge: a data file's gzipped JSON lines to the map's JSON array, "
            "invoked by the state machine once per file",
        ),
        PlannedCall("iam", "CreateRole, PutRolePolicy", "runbook-copy-*", "the execution role"),
        PlannedCall(
            "stepfunctions",
            "CreateStateMachine",
            f"runbook-{rb.runbook.id}-<step>",
            f"a map of the export's data files ({p.files_in_flight} at once), each a map of "
            f"its items: {p.max_concurrency} {p.child_type} children of {p.batch_size} in all",
        ),
        PlannedCall("stepfunctions", "StartExecution", "<step>-<run>", "one, by name"),
        PlannedCall(
            "stepfunctions",
            "DescribeExecution, DescribeMapRun",
            "<step>-<run>",
            f"every {p.poll_seconds:g} s: the progress bar",
        ),
        PlannedCall(
            "dynamodb (by the state machine)",
            "PutItem, UpdateItem",
            e.target,
            "conditional: absent, or written by this run / older and same creator",
        ),
    ]
