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

Per item, an inline Map runs the same decisions as the local path
(engine/actions/migrate/write.py), in JSONPath and intrinsic functions only:

    Classify   quarantine what classify_legacy refuses (user and id: non-empty strings; each
               required attribute present, not NULL, of its kind) and what the target's index
               keys cannot hold (type, empty string): target_fit.why_unfit's key checks
    Lookup     the company: aws-sdk:s3:getObject of <mapping prefix><sha256(user)>, written by
               the engine from the journaled mapping (company-users is keyed by company)
    Known      a collision the analysis found (company#id in its list): written by neither
    Build      to_company_scoped: the item, plus companyId, createdBy = user, createdAt kept
               when a non-empty string (else the migration timestamp), updatedAt = timestamp
    Put        dynamodb:putItem with write.WRITE_CONDITION: never over a newer application
               write; ConditionalCheckFailed -> ReadBack (GetItem, consistent) -> Settle:
               another creator: a collision; same creator and newer: skipped_newer; the item
               gone: Put again (at most PUT_ATTEMPTS); a ValidationException: quarantined
    DropUser   the item keeps every attribute but the legacy user attribute: JSONPath cannot
               drop a key, so an UpdateItem REMOVEs it, on condition that the item is still
               this run's (updatedAt = timestamp AND createdBy = user): an application write
               in between is never touched
    Record     every outcome but "migrated" is one object <outcomes prefix><sha256(key)> (the
               item, its outcome, why): the engine reads them into the step's ledger

ToleratedFailureCount is 0 at both levels: an item that fails (a user without a mapping
object, a throttle past its retries) fails its file's map run, that file's child, the outer map
run, and the step with it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Literal

from engine.aws.target_fit import TargetShape
from engine.runbook.model import EntitySpec
from engine.runbook.transforms import CREATED_AT, CREATED_BY, UPDATED_AT

# the local path's condition (engine/actions/migrate/write.py), with the same names
WRITE_CONDITION = "attribute_not_exists(#pk) OR (#upd <= :ts AND #cb = :user)"
OWN_WRITE_CONDITION = "#upd = :ts AND #cb = :user"  # still this run's item: its user may go
PUT_ATTEMPTS = 3  # a failed condition whose item vanished before the read-back is put again
NAME_LIMIT = 80  # Step Functions names (state machine, execution): 1..80 characters
ROLE_NAME_LIMIT = 64  # IAM role names
MAX_KNOWN_COLLISIONS = 2000  # collisions carried in the definition (1 MB at most, each child)
KINDS = {"string": "S", "number": "N", "bool": "BOOL", "map": "M", "list": "L"}
SIMPLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # addressable as $.Item.<name>
SAFE_PREFIX = re.compile(r"^[A-Za-z0-9_.=/-]*$")  # fits a States.Format template unescaped
THROTTLED = [
    "DynamoDB.ProvisionedThroughputExceededException",
    "DynamoDB.ThrottlingException",
    "DynamoDB.RequestLimitExceeded",
    "DynamoDB.TransactionConflictException",
    "DynamoDB.InternalServerErrorException",
]
# a request the target refuses (item too large, a key too long): moto names the code, AWS's
# optimized integration reports the SDK's generic class
REJECTED = ["DynamoDB.ValidationException", "DynamoDB.AmazonDynamoDBException"]
CONDITION_FAILED = "DynamoDB.ConditionalCheckFailedException"
S3_THROTTLED = ["S3.SlowDownException", "S3.InternalErrorException", "S3.S3Exception"]
# what AWS documents as a Lambda invoke's transient errors (Step Functions' lambda:invoke)
LAMBDA_TRANSIENT = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
FILES_LABEL = "Files"  # the outer map (its map run: one item per data file)
ITEMS_LABEL = "Items"  # the inner map of each file (its map run: one item per item)


@dataclass(frozen=True)
class CopySpec:
    """What the generator needs: the entity, the keys of both tables, the target's shape, the
    run's timestamp, where things are in S3, batching and concurrency."""

    entity: EntitySpec
    source_keys: tuple[str, ...]  # the legacy table's key attributes
    target_keys: tuple[str, str]  # (partition, sort) of the company-scoped table
    shape: TargetShape
    migration_ts: str
    bucket: str
    reader_prefix: str  # the reader's input: one JSON array of {"Item": ...} per data file
    files_prefix: str  # what the outer map lists: the export's data files, or the converted ones
    mapping_prefix: str  # <prefix><sha256(user)> holds the user's companyId
    outcomes_prefix: str  # <prefix><sha256(key)>: an item that was not simply migrated
    results_prefix: str  # ResultWriter's
    known_collisions: tuple[str, ...] = ()  # "company#id" the analysis found
    batch_size: int = 1
    max_concurrency: int = 1000
    child_type: Literal["STANDARD", "EXPRESS"] = "EXPRESS"
    files_in_flight: int = 10  # data files copied at once (open map runs: 1,000 an account)
    bridge_function: str | None = None  # the Lambda that converts a data file; None: converted


def aws_name(parts: list[str], limit: int = NAME_LIMIT) -> str:
    """A deterministic name of `parts` that Step Functions and IAM accept: letters, digits,
    - and _ (CloudWatch logging takes no more), at most `limit` characters; a longer one is
    cut and ends with a hash of the whole, so two long names stay apart."""
    raw = "-".join(parts)
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", raw).strip("-") or "runbook"
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:10]
    return f"{name[: limit - 11].rstrip('-')}-{digest}"


def user_object(prefix: str, user: str) -> str:
    """The S3 key of a user's company (what the Lookup state reads)."""
    return prefix + hashlib.sha256(user.encode("utf-8")).hexdigest()


def refusal(spec: CopySpec) -> str | None:
    """Why this entity's transform cannot run as the state machine, or None (one line, for
    `runbook check`, `runbook plan` and the step)."""
    e = spec.entity
    names = {e.user_attr, e.id_attr, e.company_attr, *e.required, *spec.source_keys}
    names |= {k.name for k in spec.shape.keys}
    odd = sorted(n for n in names if not SIMPLE_NAME.match(n))
    if odd:
        return (
            f"attribute name(s) {', '.join(odd)} cannot be addressed in JSONPath "
            "($.Item.<name>): use the local backend"
        )
    if spec.target_keys != (e.company_attr, e.id_attr):
        return (
            f"{e.target}'s keys are {spec.target_keys}, not ({e.company_attr}, {e.id_attr}): "
            "the state machine builds only that key"
        )
    if e.user_attr in (CREATED_BY, CREATED_AT, UPDATED_AT, e.company_attr, e.id_attr):
        return f"user attribute {e.user_attr} is one the transform sets: use the local backend"
    for prefix in (spec.mapping_prefix, spec.outcomes_prefix):
        if not SAFE_PREFIX.match(prefix):
            return f"S3 prefix {prefix!r}: only letters, digits and _ . = / - are allowed"
    if len(spec.known_collisions) > MAX_KNOWN_COLLISIONS:
        return (
            f"{len(spec.known_collisions)} known collisions: more than the definition carries "
            f"({MAX_KNOWN_COLLISIONS}); resolve them or use the local backend"
        )
    return None


def _item(attr: str, sub: str | None = None) -> str:
    return f"$.Item.{attr}" + (f".{sub}" if sub else "")


def _missing(attr: str) -> list[dict[str, Any]]:
    """Rules that match an absent or NULL attribute."""
    return [
        {"Not": {"Variable": _item(attr), "IsPresent": True}},
        {"Variable": _item(attr, "NULL"), "IsPresent": True},
    ]


def _not_text(attr: str) -> list[dict[str, Any]]:
    """Rules (in order) that match anything but a non-empty string."""
    return [
        {"Not": {"Variable": _item(attr, "S"), "IsPresent": True}},
        {"Variable": _item(attr, "S"), "StringEquals": ""},
    ]


def classify_rules(spec: CopySpec) -> list[dict[str, Any]]:
    """The Choice rules that send an item to quarantine, in classify_legacy's order. The first
    that matches wins; a rule never compares a path an earlier rule did not find present (an
    interpreter may evaluate every branch of an And)."""
    e = spec.entity
    rules = _not_text(e.user_attr) + _not_text(e.id_attr)
    for attr, kind in e.required.items():
        rules += _missing(attr)
        rules.append({"Not": {"Variable": _item(attr, KINDS[kind]), "IsPresent": True}})
    return [{**rule, "Next": "Quarantine"} for rule in rules]


def index_keys(spec: CopySpec) -> list[tuple[str, str]]:
    """(name, declared type) of the target's optional keys (indexes) the legacy item may carry:
    target_fit.why_unfit's checks for them (type; an empty string)."""
    e = spec.entity
    set_by_transform = {e.company_attr, CREATED_BY, CREATED_AT, UPDATED_AT, e.user_attr, e.id_attr}
    out: dict[str, str] = {}
    for key in spec.shape.keys:
        if key.name not in set_by_transform and key.name not in out:
            out[key.name] = key.type
    return list(out.items())


def key_checks(spec: CopySpec, after: str) -> dict[str, Any]:
    """One Choice state per index key, chained from "Keys0" to `after`: absent passes, of
    another type or an empty string is quarantined."""
    keys = index_keys(spec)
    states: dict[str, Any] = {}
    for n, (name, kind) in enumerate(keys):
        following = f"Keys{n + 1}" if n + 1 < len(keys) else after
        rules: list[dict[str, Any]] = [
            {"Not": {"Variable": _item(name), "IsPresent": True}, "Next": following},
            {"Not": {"Variable": _item(name, kind), "IsPresent": True}, "Next": "Quarantine"},
        ]
        if kind == "S":
            rules.append({"Variable": _item(name, "S"), "StringEquals": "", "Next": "Quarantine"})
        states[f"Keys{n}"] = {"Type": "Choice", "Choices": rules, "Default": following}
    return states


def _outcome(outcome: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"outcome": outcome, "Item.$": "$.Item", "okey.$": "$.okey"}
    return {"Type": "Pass", "Parameters": {**params, **(extra or {})}, "Next": "Record"}


def item_states(spec: CopySpec) -> dict[str, Any]:
    """The per-item states (the inline Map's processor)."""
    e = spec.entity
    pk, sk = spec.target_keys
    ts = spec.migration_ts
    user = _item(e.user_attr, "S")
    key_values = ", ".join(_item(k) for k in spec.source_keys)
    key = {"#pk": pk, "#upd": UPDATED_AT, "#cb": CREATED_BY}
    values = {":ts": {"S": ts}, ":user": {"S.$": "$.user"}}
    target_key = {pk: {"S.$": "$.company"}, sk: {"S.$": f"$.Item.{e.id_attr}.S"}}
    states: dict[str, Any] = {
        "Start": {
            "Type": "Pass",
            "Parameters": {
                "Item.$": "$.Item",
                "okey.$": (
                    f"States.Hash(States.JsonToString(States.Array({key_values})), 'SHA-256')"
                ),
            },
            "Next": "Classify",
        },
        "Classify": {
            "Type": "Choice",
            "Choices": classify_rules(spec),
            "Default": "Keys0" if index_keys(spec) else "Lookup",
        },
        **key_checks(spec, "Lookup"),
        "Quarantine": _outcome("quarantined", {"why": "classified"}),
        "Lookup": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
            "Parameters": {
                "Bucket": spec.bucket,
                "Key.$": (
                    f"States.Format('{spec.mapping_prefix}{{}}', States.Hash({user}, 'SHA-256'))"
                ),
            },
            "ResultSelector": {"company.$": "$.Body"},
            "ResultPath": "$.map",
            "Retry": [{"ErrorEquals": S3_THROTTLED, "MaxAttempts": 6, "BackoffRate": 2}],
            "Next": "Created",
        },
        "Created": {
            "Type": "Choice",
            "Choices": [
                {
                    "Not": {"Variable": _item(CREATED_AT, "S"), "IsPresent": True},
                    "Next": "StampCreated",
                },
                {"Variable": _item(CREATED_AT, "S"), "StringEquals": "", "Next": "StampCreated"},
            ],
            "Default": "KeepCreated",
        },
        "KeepCreated": {
            "Type": "Pass",
            "Parameters": {"S.$": _item(CREATED_AT, "S")},
            "ResultPath": "$.created",
            "Next": "Stamps",
        },
        "StampCreated": {
            "Type": "Pass",
            "Parameters": {"S": ts},
            "ResultPath": "$.created",
            "Next": "Stamps",
        },
        "Stamps": {
            "Type": "Pass",
            "Parameters": {
                e.company_attr: {"S.$": "$.map.company"},
                CREATED_BY: {"S.$": user},
                f"{CREATED_AT}.$": "$.created",
                UPDATED_AT: {"S": ts},
            },
            "ResultPath": "$.stamps",
            "Next": "Build",
        },
        "Build": {
            "Type": "Pass",
            "Parameters": {
                "Item.$": "$.Item",
                "okey.$": "$.okey",
                "user.$": user,
                "company.$": "$.map.company",
                "new.$": "States.JsonMerge($.Item, $.stamps, false)",
                "tries": 0,
            },
            "Next": "Known" if spec.known_collisions else "Put",
        },
        "Put": {
            "Type": "Task",
            "Resource": "arn:aws:states:::dynamodb:putItem",
            "Parameters": {
                "TableName": e.target,
                "Item.$": "$.new",
                "ConditionExpression": WRITE_CONDITION,
                "ExpressionAttributeNames": key,
                "ExpressionAttributeValues": values,
            },
            "ResultPath": None,
            "Retry": [{"ErrorEquals": THROTTLED, "MaxAttempts": 10, "BackoffRate": 2}],
            "Catch": [
                {"ErrorEquals": [CONDITION_FAILED], "ResultPath": "$.err", "Next": "ReadBack"},
                {"ErrorEquals": REJECTED, "ResultPath": "$.err", "Next": "Rejected"},
            ],
            "Next": "DropUser",
        },
        "DropUser": {
            "Type": "Task",
            "Resource": "arn:aws:states:::dynamodb:updateItem",
            "Parameters": {
                "TableName": e.target,
                "Key": target_key,
                "UpdateExpression": "REMOVE #u",
                "ConditionExpression": OWN_WRITE_CONDITION,
                "ExpressionAttributeNames": {
                    "#u": e.user_attr,
                    "#upd": UPDATED_AT,
                    "#cb": CREATED_BY,
                },
                "ExpressionAttributeValues": values,
            },
            "ResultPath": None,
            "Retry": [{"ErrorEquals": THROTTLED, "MaxAttempts": 10, "BackoffRate": 2}],
            # an application write came in between: its item is kept as it is
            "Catch": [{"ErrorEquals": [CONDITION_FAILED], "ResultPath": None, "Next": "Migrated"}],
            "Next": "Migrated",
        },
        "Migrated": {"Type": "Pass", "Result": {"outcome": "migrated"}, "End": True},
        "Rejected": _outcome("quarantined", {"why": "rejected", "error.$": "$.err.Cause"}),
        "ReadBack": {
            "Type": "Task",
            "Resource": "arn:aws:states:::dynamodb:getItem",
            "Parameters": {"TableName": e.target, "Key": target_key, "ConsistentRead": True},
            "ResultSelector": {"found.$": "$"},
            "ResultPath": "$.old",
            "Retry": [{"ErrorEquals": THROTTLED, "MaxAttempts": 10, "BackoffRate": 2}],
            "Next": "Settle",
        },
        "Settle": {
            "Type": "Choice",
            "Choices": [
                {"Not": {"Variable": "$.old.found.Item", "IsPresent": True}, "Next": "Again"},
                {
                    "Not": {"Variable": f"$.old.found.Item.{CREATED_BY}.S", "IsPresent": True},
                    "Next": "Owned",
                },
                {
                    "Not": {
                        "Variable": f"$.old.found.Item.{CREATED_BY}.S",
                        "StringEqualsPath": "$.user",
                    },
                    "Next": "Owned",
                },
                {
                    "Not": {"Variable": f"$.old.found.Item.{UPDATED_AT}.S", "IsPresent": True},
                    "Next": "Unreadable",
                },
                {
                    "Variable": f"$.old.found.Item.{UPDATED_AT}.S",
                    "StringGreaterThan": ts,
                    "Next": "Skipped",
                },
            ],
            "Default": "Unreadable",
        },
        "Again": {
            "Type": "Pass",
            "Parameters": {"n.$": "States.MathAdd($.tries, 1)"},
            "ResultPath": "$.again",
            "Next": "TooMany",
        },
        "TooMany": {
            "Type": "Choice",
            "Choices": [
                {
                    "Variable": "$.again.n",
                    "NumericGreaterThanEquals": PUT_ATTEMPTS,
                    "Next": "Vanish",
                }
            ],
            "Default": "Retry",
        },
        "Retry": {
            "Type": "Pass",
            "Parameters": {
                "Item.$": "$.Item",
                "okey.$": "$.okey",
                "user.$": "$.user",
                "company.$": "$.company",
                "new.$": "$.new",
                "tries.$": "$.again.n",
            },
            "Next": "Put",
        },
        "Vanish": {
            "Type": "Fail",
            "Error": "Runbook.ConditionWithoutItem",
            "Cause": "the conditional put kept failing without an item in the way",
        },
        "Owned": _outcome(
            "collision",
            {"why": "target-owned-by-other", "company.$": "$.company", "old.$": "$.old.found.Item"},
        ),
        "Unreadable": _outcome(
            "collision",
            {"why": "target updatedAt unreadable", "company.$": "$.company"},
        ),
        "Skipped": _outcome("skipped_newer"),
        "Record": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:s3:putObject",
            "Parameters": {
                "Bucket": spec.bucket,
                "Key.$": f"States.Format('{spec.outcomes_prefix}{{}}', $.okey)",
                "Body.$": "States.JsonToString($)",
                "ContentType": "application/json",
            },
            "ResultSelector": {"recorded": True},
            "Retry": [{"ErrorEquals": S3_THROTTLED, "MaxAttempts": 6, "BackoffRate": 2}],
            "End": True,
        },
    }
    if spec.known_collisions:
        states["Known"] = {
            "Type": "Pass",
            "Parameters": {
                "hit.$": (
                    "States.ArrayContains($.known, "
                    f"States.Format('{{}}#{{}}', $.company, $.Item.{e.id_attr}.S))"
                )
            },
            "ResultPath": "$.known",
            "Next": "IsKnown",
        }
        states["IsKnown"] = {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.known.hit", "BooleanEquals": True, "Next": "KnownCollision"}
            ],
            "Default": "Put",
        }
        states["KnownCollision"] = _outcome("collision", {"why": "known", "company.$": "$.company"})
        # the list rides in with each item: Build puts it at $.known (see definition)
        states["Build"]["Parameters"]["known"] = list(spec.known_collisions)
    return {"StartAt": "Start", "States": states}


def happy_path(spec: CopySpec) -> list[str]:
    """The states an item that is simply migrated passes through (Choice: its Default), in
    order: what it costs in transitions."""
    states = item_states(spec)["States"]
    path, name = [], "Start"
    while name:
        path.append(name)
        state = states[name]
        if state.get("End"):
            break
        name = state.get("Default") if state["Type"] == "Choice" else state.get("Next")
        if name == "Known":  # a known collision is checked, then the put
            path += ["Known", "IsKnown"]
            name = "Put"
    return path


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
