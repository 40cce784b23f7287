"""The per-item states of the step-functions backend's copy (pure: no I/O; tested apart in
tests/unit/actions). Each child runs them, an inline Map over its batch: the same decisions as
the local path (engine/actions/migrate/write.py), in JSONPath and intrinsic functions only:

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
"""

from __future__ import annotations

from typing import Any

from engine.actions.migrate.sfn_spec import CopySpec
from engine.runbook.transforms import CREATED_AT, CREATED_BY, UPDATED_AT

# the local path's condition (engine/actions/migrate/write.py), with the same names
WRITE_CONDITION = "attribute_not_exists(#pk) OR (#upd <= :ts AND #cb = :user)"
OWN_WRITE_CONDITION = "#upd = :ts AND #cb = :user"  # still this run's item: its user may go
PUT_ATTEMPTS = 3  # a failed condition whose item vanished before the read-back is put again
KINDS = {"string": "S", "number": "N", "bool": "BOOL", "map": "M", "list": "L"}
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
