"""The grants a Phase 5 restore needs beyond the Lambda API names (`runbook iam-policy` adds
them once Day 1's inventory has found what the deprecated functions use): what AWS checks on
the caller when a function is created with these settings.

- iam:PassRole on exactly the roles of the deprecated functions (never `role/*`: with
  CreateFunction and AddPermission that would let the policy's holder run any role's
  permissions), only towards Lambda (iam:PassedToService);
- the EC2 reads Lambda makes as the caller for a function in a VPC;
- lambda:GetLayerVersion on the layer versions the functions use;
- KMS on the customer keys that encrypt their environments (an archive reads and writes it
  under the same key; Lambda takes a grant on it for the restored function);
- creating, updating and deleting the event source mappings of kept functions that read a
  legacy stream (a restore re-points them at the restored table's new stream, and makes one it
  finds there like the archived one).

`restore_needs` reads Day 1's inventory artifact (engine/actions/prepare/legacy_inventory.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.aws.grant import Grant


@dataclass(frozen=True)
class RestoreNeeds:
    roles: tuple[str, ...] = ()
    kms_keys: tuple[str, ...] = ()
    layers: tuple[str, ...] = ()
    vpc: bool = False
    stream_readers: tuple[str, ...] = ()  # function ARNs whose mappings read a legacy stream


def restore_needs(inventory: dict[str, Any]) -> RestoreNeeds:
    """From Day 1's inventory artifact (its JSON)."""
    functions = (inventory.get("deprecated_functions") or {}).values()
    return RestoreNeeds(
        roles=tuple(sorted({f["role"] for f in functions if f.get("role")})),
        kms_keys=tuple(sorted({f["kms_key"] for f in functions if f.get("kms_key")})),
        layers=tuple(sorted({arn for f in functions for arn in f.get("layers", [])})),
        vpc=any(f.get("vpc") for f in functions),
        stream_readers=tuple(
            sorted({m["function"] for m in inventory.get("legacy_stream_mappings") or []})
        ),
    )


def read_needs(path: Path) -> RestoreNeeds | None:
    """The needs Day 1 recorded at `path` (an inventory artifact), None when there is none."""
    if not path.exists():
        return None
    return restore_needs(json.loads(path.read_text()))


def _unqualified(arn: str) -> str:
    return ":".join(arn.split(":")[:7])


def restore_grants(needs: RestoreNeeds, account: str = "*", region: str = "*") -> list[Grant]:
    out = []
    if needs.roles:
        out.append(
            Grant(
                "PassTheArchivedRolesToRestoredFunctions",
                ("iam:PassRole",),
                needs.roles,
                {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}},
            )
        )
    if needs.vpc:
        out.append(
            Grant(
                "DescribeTheVpcOfRestoredFunctions",
                ("ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs"),
                ("*",),  # EC2's Describe actions have no resource-level permissions
            )
        )
    if needs.layers:
        out.append(Grant("LayersOfRestoredFunctions", ("lambda:GetLayerVersion",), needs.layers))
    if needs.kms_keys:
        out.append(
            Grant(
                "CustomerKeysOfTheArchivedEnvironments",
                ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"),
                needs.kms_keys,
            )
        )
        out.append(
            Grant(
                "LambdasGrantOnTheCustomerKeys",
                ("kms:CreateGrant",),
                needs.kms_keys,
                {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )
    if needs.stream_readers:
        readers = sorted({_unqualified(a) for a in needs.stream_readers})
        functions = [*readers, *(f"{a}:*" for a in readers)]
        out.append(
            Grant(
                "RepointTheMappingsOfLegacyStreams",
                ("lambda:CreateEventSourceMapping",),
                ("*",),
                {"ArnLike": {"lambda:FunctionArn": functions}},
            )
        )
        out.append(
            Grant(
                "DeleteAndUpdateTheMappingsOfLegacyStreams",
                ("lambda:DeleteEventSourceMapping", "lambda:UpdateEventSourceMapping"),
                (f"arn:aws:lambda:{region}:{account}:event-source-mapping:*",),
                {"ArnLike": {"lambda:FunctionArn": functions}},
            )
        )
    return out
