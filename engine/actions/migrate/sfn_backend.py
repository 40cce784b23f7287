"""migrate_entity with `backend = "step-functions"`: the copy on AWS's own distributed engine.

    export     ExportTableToPointInTime (PITR, no read capacity of the live table) to
               <bucket>/<prefix>/<run>/<step>/export; waited for COMPLETED; ARN journaled
    bridge     the export's data files as the reader's input, one JSON array per file: on a
               real account the state machine's Convert state (the bridge Lambda, created
               here); in a rehearsal here, with the same code (ctx.world.bridge_export)
    mapping    one object per user: <base>/mapping/<sha256(user)> = companyId, from the
               journaled mapping (the resolver every step shares)
    machine    the execution role (least privilege, `runbook iam-policy` grants its creation)
               and the state machine generated from the runbook (sfn_definition.py), created
               or updated
    execution  one, named from the run and the step: StartExecution by name never starts a
               second; a resume attaches to it, or redrives it when it FAILED or was stopped
    follow     DescribeExecution and the map runs' item counts (every file's, summed) every
               `poll_seconds`: the step's progress bar; the journal keeps the ARNs and the
               last counts only (sfn_follow.py)
    settle     every item that was not simply migrated left one outcome object: read into the
               step's ledger (quarantine-<entity>.jsonl, collisions-<entity>.jsonl;
               sfn_settle.py)

A stop (`s`, `runbook stop`) stops the execution (StopExecution) and checkpoints; a SIGKILL of
the console leaves it running on AWS, and the next `runbook run` attaches to it.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from engine.actions.analyze.legacy import (
    entity_spec,
    open_index,
    source_keys,
    target_keys,
    target_shape,
)
from engine.actions.analyze.mapping import MAPPING_ARTIFACT, build_resolver
from engine.actions.migrate.ledger import Ledger, ledger_name
from engine.actions.migrate.params import MigrateParams
from engine.actions.migrate.sfn_definition import definition
from engine.actions.migrate.sfn_follow import check_done, follow, stopped_by_us
from engine.actions.migrate.sfn_settle import settle
from engine.actions.migrate.sfn_spec import (
    ROLE_NAME_LIMIT,
    CopySpec,
    aws_name,
    refusal,
    user_object,
)
from engine.actions.migrate.state import MigrateCursors, SfnCursor
from engine.aws import dynamo
from engine.aws import stepfunctions as sfnx
from engine.aws.bridge_function import bridge_policy, ensure_bridge_function
from engine.aws.target_fit import TargetShape
from engine.core.context import ActionContext
from engine.runbook.model import EntitySpec

EXECUTION_INPUT = "{}"  # everything is in the definition: the same input, the same execution
RESUMES = 3  # an execution found ABORTED by an earlier stop is redriven at most this often
ROLE_POLICY = "runbook-console-copy"
FUNCTION_NAME_LIMIT = 64  # Lambda function names


def names(ctx: ActionContext, e: EntitySpec) -> dict[str, str]:
    """Every name of this run's copy, derived from the runbook, the run (its timestamp) and
    the step: the same on every resume."""
    run = ctx.migration_ts.replace("-", "").replace(":", "").replace(".", "")
    rb = ctx.runbook.runbook.id
    return {
        "state_machine": aws_name(["runbook", rb, ctx.step_id]),
        "execution": aws_name([ctx.step_id, run]),
        "role": aws_name(["runbook-copy", rb, e.name], ROLE_NAME_LIMIT),
        "bridge": aws_name(["runbook-bridge", rb, e.name], FUNCTION_NAME_LIMIT),
        "bridge_role": aws_name(["runbook-bridge", rb, e.name], ROLE_NAME_LIMIT),
        "base": f"{rb}/{run}/{ctx.step_id}",
    }


def base_prefix(ctx: ActionContext, p: MigrateParams, e: EntitySpec) -> str:
    """Where this run's copy keeps everything in the bucket (no trailing slash)."""
    return f"{p.prefix.strip('/')}/{names(ctx, e)['base']}"


def export_data_prefix(export: dict[str, Any]) -> str:
    """The export's data files' prefix: beside its manifest (ExportManifest), else where AWS
    puts them, <S3Prefix>/AWSDynamoDB/<export id>/data/."""
    manifest = str(export.get("ExportManifest") or "")
    if "/" in manifest:
        return manifest.rsplit("/", 1)[0] + "/data/"
    prefix = str(export.get("S3Prefix") or "").strip("/")
    export_id = str(export["ExportArn"]).rsplit("/", 1)[-1]
    return (prefix + "/" if prefix else "") + f"AWSDynamoDB/{export_id}/data/"


def copy_spec(
    ctx: ActionContext,
    p: MigrateParams,
    e: EntitySpec,
    shape: TargetShape,
    known: list[str],
    files_prefix: str | None = None,
    bridge_function: str | None = None,
) -> CopySpec:
    """`files_prefix`: what the outer map lists (None: the converted files, a rehearsal);
    `bridge_function`: the Lambda that converts each (a real account)."""
    base = base_prefix(ctx, p, e)
    pk, sk = target_keys(ctx.runbook, e)
    return CopySpec(
        entity=e,
        source_keys=tuple(source_keys(ctx.runbook, e)),
        target_keys=(pk, sk),
        shape=shape,
        migration_ts=ctx.migration_ts,
        bucket=str(p.bucket),
        reader_prefix=f"{base}/reader/",
        files_prefix=files_prefix or f"{base}/reader/",
        bridge_function=bridge_function,
        files_in_flight=p.files_in_flight,
        mapping_prefix=f"{base}/mapping/",
        outcomes_prefix=f"{base}/outcomes/",
        results_prefix=f"{base}/results",
        known_collisions=tuple(known),
        batch_size=p.batch_size,
        max_concurrency=p.max_concurrency,
        child_type=p.child_type,
    )


def role_policy(spec: CopySpec, table_arn: str, sm_arn: str) -> dict[str, Any]:
    """What the state machine may do: read its inputs and write its outputs under its own
    prefix, write the target table, and run its own map (child executions)."""
    partition = table_arn.split(":")[1]
    target = table_arn.rsplit("/", 1)[0] + "/" + spec.entity.target
    base = spec.reader_prefix.rsplit("/reader/", 1)[0]
    objects = f"arn:{partition}:s3:::{spec.bucket}/{base}/*"
    executions = sm_arn.replace(":stateMachine:", ":execution:", 1) + ":*"
    convert: list[dict[str, Any]] = []
    if spec.bridge_function:
        convert = [
            {
                "Sid": "Convert",
                "Effect": "Allow",
                "Action": ["lambda:InvokeFunction"],
                "Resource": [spec.bridge_function, spec.bridge_function + ":*"],
            }
        ]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ListFiles", "Effect": "Allow", "Action": ["s3:ListBucket"],
             "Resource": [f"arn:{partition}:s3:::{spec.bucket}"],
             "Condition": {"StringLike": {"s3:prefix": [spec.files_prefix + "*"]}}},
            {"Sid": "ReadInputs", "Effect": "Allow", "Action": ["s3:GetObject"],
             "Resource": [objects]},
            *convert,
            {"Sid": "WriteResults", "Effect": "Allow",
             "Action": ["s3:PutObject", "s3:ListMultipartUploadParts",
                        "s3:AbortMultipartUpload"],
             "Resource": [objects]},
            {"Sid": "WriteTarget", "Effect": "Allow",
             "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem"],
             "Resource": [target]},
            {"Sid": "RunMap", "Effect": "Allow", "Action": ["states:StartExecution"],
             "Resource": [sm_arn]},
            {"Sid": "RunChildren", "Effect": "Allow",
             "Action": ["states:DescribeExecution", "states:StopExecution",
                        "states:RedriveExecution"],
             "Resource": [executions]},
        ],
    }  # fmt: skip


def _known_collisions(ctx: ActionContext, e: EntitySpec) -> list[str]:
    index = open_index(ctx)
    if index is None:
        ctx.log(
            "no analysis index: legacy-vs-legacy collisions are only caught by the createdBy "
            "condition (first writer wins)",
            "warning",
        )
        return []
    try:
        return [f"{company}#{ident}" for company, ident in index.collision_keys(e.name)]
    finally:
        index.close()


def _mapped_users(ctx: ActionContext, resolver: Any) -> set[str]:
    """Every user the journaled mapping knows: members, overrides, and the mapping document's
    users (orphans included)."""
    users = set(resolver.memberships) | set(resolver.overrides)
    path = ctx.artifacts_dir / MAPPING_ARTIFACT
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                users.add(str(json.loads(line)["user"]))
    return users


def _write_mapping(ctx: ActionContext, s3: Any, spec: CopySpec) -> int:
    resolver = build_resolver(ctx)
    written = 0
    for user in sorted(_mapped_users(ctx, resolver)):
        company = resolver.company_for(user)
        if company is None:
            continue  # a conflict: its items fail the map run, as the local step fails
        s3.put_object(
            Bucket=spec.bucket,
            Key=user_object(spec.mapping_prefix, user),
            Body=company.encode("utf-8"),
            ContentType="text/plain",
        )
        written += 1
        ctx.clock.check()
    return written


def _export(ctx: ActionContext, p: MigrateParams, e: EntitySpec, s: SfnCursor) -> dict[str, Any]:
    ddb = ctx.client("dynamodb")
    if not s.export_arn:
        table_arn = ddb.describe_table(TableName=e.source)["Table"]["TableArn"]
        base = f"{p.prefix.strip('/')}/{names(ctx, e)['base']}"
        token = aws_name([names(ctx, e)["execution"], "export"], 64)
        got = ddb.export_table_to_point_in_time(
            TableArn=table_arn,
            S3Bucket=p.bucket,
            S3Prefix=f"{base}/export",
            ExportFormat="DYNAMODB_JSON",
            ClientToken=token,
        )["ExportDescription"]
        s.export_arn = got["ExportArn"]
        ctx.checkpoint(force=True)
        ctx.log(f"{e.source}: export {s.export_arn} to s3://{p.bucket}/{base}/export")
    desc = sfnx.wait_export(ddb, s.export_arn, ctx.clock)
    s.export_manifest = str(desc.get("ExportManifest") or "")
    return desc


def _bridge(
    ctx: ActionContext, p: MigrateParams, e: EntitySpec, s: SfnCursor, export: dict[str, Any]
) -> tuple[str | None, str | None]:
    """The export's data files as the reader's input: converted here (a rehearsal: the
    items counted), or by the bridge function in the state machine (a real account: created
    here; the items are the export's count). Returns (what the outer map lists, the
    function's ARN), both None for a rehearsal's converted files."""
    base = base_prefix(ctx, p, e)
    converted = ctx.world.bridge_export(ctx.client("s3"), export, str(p.bucket), f"{base}/reader/")
    if converted is not None:
        s.reader_items = converted
        return None, None
    s.reader_items = int(export.get("ItemCount") or 0)
    data = export_data_prefix(export)
    n = names(ctx, e)
    table_arn = str(export.get("TableArn") or "")
    _, partition, _, region, account = table_arn.split(":")[:5]
    policy = bridge_policy(
        partition, region, account, str(p.bucket), data.rstrip("/"), f"{base}/reader/", n["bridge"]
    )
    arn = ensure_bridge_function(
        ctx.client("lambda"), ctx.client("iam"), n["bridge"], n["bridge_role"], policy, ctx.clock
    )
    ctx.log(f"{e.name}: bridge function {arn} converts s3://{p.bucket}/{data}")
    return data, arn


def _start(
    ctx: ActionContext, p: MigrateParams, e: EntitySpec, s: SfnCursor, export: dict[str, Any]
) -> None:
    """Bridge, mapping, role, state machine, then the one execution of this name."""
    ddb, s3 = ctx.client("dynamodb"), ctx.client("s3")
    shape = target_shape(ddb, e.target)
    if shape is None:
        raise RuntimeError(f"{e.target} does not exist: create it before migrating {e.name}")
    known = _known_collisions(ctx, e)
    why = refusal(copy_spec(ctx, p, e, shape, known))
    if why is not None:
        raise ValueError(f"{e.name}: the step-functions backend cannot run it: {why}")
    files, bridge = _bridge(ctx, p, e, s, export)
    spec = copy_spec(ctx, p, e, shape, known, files, bridge)
    users = _write_mapping(ctx, s3, spec)
    ctx.log(f"{e.name}: {s.reader_items:,} items to copy; {users} users mapped in S3")
    n = names(ctx, e)
    table_arn = ddb.describe_table(TableName=e.target)["Table"]["TableArn"]
    _, partition, _, region, account = table_arn.split(":")[:5]
    sm_arn = (
        s.state_machine_arn
        or f"arn:{partition}:states:{region}:{account}:stateMachine:" + (n["state_machine"])
    )
    role_arn = sfnx.ensure_role(
        ctx.client("iam"), n["role"], ROLE_POLICY, role_policy(spec, table_arn, sm_arn)
    )
    body = json.dumps(definition(spec), sort_keys=True)
    s.state_machine_arn = sfnx.ensure_state_machine(
        ctx.client("stepfunctions"), sm_arn, n["state_machine"], body, role_arn, ctx.clock
    )
    name = n["execution"] if s.attempt == 0 else aws_name([n["execution"], f"a{s.attempt}"])
    s.execution_arn = sfnx.start_once(
        ctx.client("stepfunctions"), s.state_machine_arn, name, EXECUTION_INPUT
    )
    ctx.checkpoint(force=True)
    ctx.log(f"{e.name}: execution {s.execution_arn}")


def _resume(ctx: ActionContext, p: MigrateParams, e: EntitySpec, s: SfnCursor) -> None:
    """Attach to the journaled execution; redrive it if it FAILED or was stopped."""
    sfn = ctx.client("stepfunctions")
    status = sfn.describe_execution(executionArn=s.execution_arn)["status"]
    while s.stopped and status == sfnx.RUNNING:  # still stopping: redrive it once it closes
        ctx.clock.sleep_real(p.poll_seconds)
        status = sfn.describe_execution(executionArn=s.execution_arn)["status"]
    s.stopped = False
    if status not in sfnx.REDRIVABLE:
        ctx.log(f"{e.name}: attached to execution {s.execution_arn} ({status})")
        return
    if sfnx.redrive(sfn, s.execution_arn):
        s.redrives += 1
        ctx.log(f"{e.name}: execution {status}: redriven ({s.execution_arn})")
    else:  # an emulator without RedriveExecution: the next attempt, a new name
        s.attempt += 1
        s.execution_arn = ""
        ctx.log(
            f"{e.name}: execution {status}, and this endpoint cannot redrive it: attempt "
            f"{s.attempt + 1} starts (its writes are conditional: the items converge)",
            "warning",
        )
    ctx.checkpoint(force=True)


def run_step_functions(ctx: ActionContext, p: MigrateParams) -> dict[str, Any]:
    e = entity_spec(ctx.runbook, p.entity)
    c = ctx.cursors_as(MigrateCursors)
    if c.sfn is None:
        c.sfn = SfnCursor()
        ctx.checkpoint(force=True)
    s = c.sfn
    try:
        export = _export(ctx, p, e, s)
        for _ in range(RESUMES):
            if s.execution_arn:
                _resume(ctx, p, e, s)
            if not s.execution_arn:
                _start(ctx, p, e, s, export)
            status = follow(ctx, p, e, s)
            # a stop whose session was abandoned before it journaled `stopped` (or attached
            # while the execution was still stopping): redrive it now, as the resume would
            if not stopped_by_us(ctx.client("stepfunctions"), s.execution_arn):
                break
            s.stopped = True
        check_done(ctx, e, s, status)
    except ClientError as exc:
        ctx.checkpoint(force=True)
        raise RuntimeError(f"{e.name}: {dynamo.error_code(exc)}: {exc}") from exc
    shape = target_shape(ctx.client("dynamodb"), e.target)
    assert shape is not None  # it existed when the execution started
    ledger = Ledger(ctx.artifact(ledger_name(e.name)), fresh=True)  # rebuilt from S3
    try:
        got = settle(ctx, str(p.bucket), f"{base_prefix(ctx, p, e)}/outcomes/", e, shape, ledger)
        artifacts = ledger.export(ctx, e.name)
        quarantined = ledger.count("quarantine")
        rejected = ledger.count_rejected_by_target()
        collisions = ledger.count("collisions")
    finally:
        ledger.close()
    c.source_total = s.reader_items
    c.counts.scanned = s.reader_items
    c.counts.skipped_newer = got["skipped_newer"]
    c.counts.migrated = s.reader_items - got["skipped_newer"] - collisions - quarantined
    ctx.checkpoint(force=True)
    if collisions:
        ctx.log(f"{collisions} {e.name} collisions not written: see {artifacts[1]}", "warning")
    if quarantined:
        ctx.log(f"{quarantined} {e.name} items quarantined: see {artifacts[0]}", "warning")
    return {
        "entity": e.name,
        "backend": "step-functions",
        "source_total": s.reader_items,
        "scanned": s.reader_items,
        "migrated": c.counts.migrated,
        "skipped_newer": c.counts.skipped_newer,
        "collisions": collisions,
        "quarantined": quarantined,
        "rejected_by_target": rejected,
        "segments": 0,
        "artifacts": artifacts,
        "export_arn": s.export_arn,
        "state_machine_arn": s.state_machine_arn,
        "execution_arn": s.execution_arn,
        "map_run_arn": s.map_run_arn,
        "redrives": s.redrives,
        "attempts": s.attempt + 1,
    }
