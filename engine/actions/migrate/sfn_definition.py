"""The state machine of the step-functions backend of migrate_entity, generated from the
runbook (pure: no I/O; tested apart in tests/unit/actions).

A map of maps. The outer Distributed Map ("Files") lists the export's data files (ItemReader
s3:listObjectsV2) and runs one STANDARD child per file, `files_in_flight` at once:

    Convert    (a real account) the bridge function (engine/aws/export_reader.py, a Lambda the
               engine creates) rewrites the file's gzipped JSON lines as the reader's input, a
               JSON array of `{"Item": <DynamoDB JSON>}`; a rehearsal converts the files on the
               operator's machine with the same code and lists the converted files instead
    Items      the inner Distributed Map reads that array and hands each child execution a
               batch `{"Items": [...]}` (ItemBatcher, or one item wrapped by the ItemSelector
               when `batch_size` is 1: moto parses no ItemBatcher)

Per item, an inline Map runs the local path's decisions (engine/actions/migrate/sfn_items.py).

ToleratedFailureCount is 0 at both levels: an item that fails (a user without a mapping
object, a throttle past its retries) fails its file's map run, that file's child, the outer map
run, and the step with it.
"""

from __future__ import annotations

from typing import Any

from engine.actions.migrate.sfn_items import item_states
from engine.actions.migrate.sfn_spec import CopySpec, refusal

# what AWS documents as a Lambda invoke's transient errors (Step Functions' lambda:invoke)
LAMBDA_TRANSIENT = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
FILES_LABEL = "Files"  # the outer map (its map run: one item per data file)
ITEMS_LABEL = "Items"  # the inner map of each file (its map run: one item per item)


def inner_concurrency(spec: CopySpec) -> int:
    """Children per file's map: `max_concurrency` is the step's whole, shared by the files."""
    return max(1, spec.max_concurrency // max(1, spec.files_in_flight))


def items_map(spec: CopySpec) -> dict[str, Any]:
    """The inner Distributed Map: one file's items (its input: `{"Key": <reader file>}`)."""
    copy: dict[str, Any] = {
        "Type": "Map",
        "Label": ITEMS_LABEL,
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket": spec.bucket, "Key.$": "$.Key"},
        },
        "MaxConcurrency": inner_concurrency(spec),
        "ToleratedFailureCount": 0,
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": spec.child_type},
            "StartAt": "Each",
            "States": {
                "Each": {
                    "Type": "Map",
                    "ItemsPath": "$.Items",
                    "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, **item_states(spec)},
                    "ResultSelector": {"items.$": "States.ArrayLength($)"},
                    "End": True,
                }
            },
        },
        "ResultWriter": {
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": spec.bucket, "Prefix": spec.results_prefix},
        },
        "End": True,
    }
    if spec.batch_size > 1:
        copy["ItemBatcher"] = {"MaxItemsPerBatch": spec.batch_size}
    else:  # one item per child, in the batch's shape (moto parses no ItemBatcher)
        copy["ItemSelector"] = {"Items.$": "States.Array($$.Map.Item.Value)"}
    return copy


def convert_state(spec: CopySpec, function_arn: str) -> dict[str, Any]:
    """The bridge: the Lambda rewrites one data file as the reader's input; its answer
    (`{"Bucket", "Key", "items"}`) becomes the inner map's input `{"Key": ...}`. A redrive
    converts the file again to the same key."""
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {
            "FunctionName": function_arn,
            "Payload": {
                "Bucket": spec.bucket,
                "Key.$": "$.Key",
                "ReaderBucket": spec.bucket,
                "ReaderPrefix": spec.reader_prefix,
            },
        },
        "ResultSelector": {"Key.$": "$.Payload.Key"},
        "ResultPath": "$",
        "Retry": [
            {"ErrorEquals": LAMBDA_TRANSIENT, "IntervalSeconds": 2, "MaxAttempts": 6,
             "BackoffRate": 2}
        ],
        "Next": ITEMS_LABEL,
    }  # fmt: skip


def definition(spec: CopySpec) -> dict[str, Any]:
    """The whole state machine (ASL, JSONPath), as a dict: `json.dumps` it."""
    reason = refusal(spec)
    if reason is not None:
        raise ValueError(reason)
    per_file: dict[str, Any] = {ITEMS_LABEL: items_map(spec)}
    if spec.bridge_function:
        per_file = {"Convert": convert_state(spec, spec.bridge_function), **per_file}
    files: dict[str, Any] = {
        "Type": "Map",
        "Label": FILES_LABEL,
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:listObjectsV2",
            "Parameters": {"Bucket": spec.bucket, "Prefix": spec.files_prefix},
        },
        "ItemSelector": {"Key.$": "$$.Map.Item.Value.Key"},
        "MaxConcurrency": spec.files_in_flight,
        "ToleratedFailureCount": 0,
        # a Distributed Map runs only in a STANDARD workflow: the file's child is one
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": next(iter(per_file)),
            "States": per_file,
        },
        "ResultWriter": {
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": spec.bucket, "Prefix": spec.results_prefix + "/files"},
        },
        "End": True,
    }
    return {
        "Comment": f"runbook-console: migrate {spec.entity.name} ({spec.entity.source} -> "
        f"{spec.entity.target}) at {spec.migration_ts}",
        "StartAt": FILES_LABEL,
        "States": {FILES_LABEL: files},
    }
