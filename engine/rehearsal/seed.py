"""Seed a rehearsal world (moto) with the runbook's inventory.

Item counts, names, users and companies all come from the runbook; this module only knows how
to shape plausible items for a key schema.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.rehearsal.legacy_shape import (
    allow_api,
    legacy_function_of,
    legacy_settings,
    seed_legacy_function,
    seed_legacy_stream,
)
from engine.rehearsal.seed_lambda import as_stack, handler_zip
from engine.runbook.model import EntitySpec, Runbook, TableSpec

WORLD_ID_PARAMETER = "/runbook-console/world-id"
LAMBDA_ROLE = "runbook-console-lambda-role"
MAX_BATCH = 25
MAX_PADDING = 300_000  # stay well under DynamoDB's 400 KB item limit
MAX_ITEM_BYTES = 400 * 1024  # DynamoDB's item size limit, by its own counting rules
OVERSIZE_MARGIN = 16  # bytes under the limit as legacy; company-scoping adds about 80


@dataclass(frozen=True)
class WorldShape:
    """How a seeded world departs from the plain rehearsal world, to look like a real account.

    alias: the API (and so the application) invokes the functions of `alias_groups` through this
        alias of a published version, not unqualified; a flag only reaches them if the alias
        is moved to a version published after the change.
    odd_index_keys: legacy items of an entity whose target table has a GSI carry that key
        attribute, valid for most, but one a number and one an empty string (the target index
        is of type S: AWS rejects both; moto writes the number).
    oversize_item: one legacy item just under 400 KB that passes it once company-scoped.
    stack_tags: every table and function carries the `aws:cloudformation:*` tags CloudFormation
        sets on a stack's resources (users cannot assign them), besides a user tag (default).
    staging_api: the account also holds a staging stack of the API: the same name, its routes
        and integrations, deployed to this stage only (default "staging"); a run must resolve
        the runbook's API by its stage and never touch this one.
    legacy_function: (default) the first deprecated function that uses the first legacy
        entity table looks like a legacy function of a real account: on `legacy_runtime` (a
        runtime the runbook's `[[lambda_runtimes]]` lists, so AWS blocks its creates), in a
        VPC, with a layer, two published versions behind the alias `legacy_alias` (weighted
        90/10), a function URL on the alias, and the API's legacy route invoking it through
        the alias (with the permission to); the legacy table has a stream, and the function
        consumes it through the alias (an event source mapping).
    legacy_stream: that stream and its reader (default); off for a DynamoDB emulator that has
        no streams (dynalite refuses UpdateTable's StreamSpecification).
    provisioned_write_units: the company-scoped tables (group "company") are PROVISIONED with
        this many WCU (and `provisioned_read_units` RCU), and the embedded server throttles
        writes beyond them as DynamoDB does (engine/rehearsal/moto_capacity.py); None: every
        table on-demand, nothing throttled (default).
    """

    alias: str | None = None
    alias_groups: tuple[str, ...] = ("company",)
    odd_index_keys: bool = False
    oversize_item: bool = False
    stack_tags: bool = True
    staging_api: str | None = "staging"  # a second API of the same name, in this stage only
    legacy_function: bool = True
    legacy_runtime: str = "python3.8"
    legacy_alias: str = "live"
    legacy_stream: bool = True
    provisioned_write_units: int | None = None
    provisioned_read_units: int = 1000

    @classmethod
    def real_shaped(cls) -> WorldShape:
        return cls(alias="live", odd_index_keys=True, oversize_item=True)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> WorldShape:
        """From a runbook's `[embedded.world]` table (unknown keys are an error)."""
        if config.get("real_shaped"):
            return cls.real_shaped()
        known = {
            "alias",
            "alias_groups",
            "odd_index_keys",
            "oversize_item",
            "stack_tags",
            "staging_api",
            "legacy_function",
            "legacy_runtime",
            "legacy_alias",
            "provisioned_write_units",
            "provisioned_read_units",
        }
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"[embedded.world]: unknown keys {', '.join(unknown)}")
        values = dict(config)
        if "alias_groups" in values:
            values["alias_groups"] = tuple(values["alias_groups"])
        return cls(**values)


STACK_NAME = "construction-expenses-prod"
USER_TAGS = {"team": "expenses"}


def stack_tags(logical_id: str) -> dict[str, str]:
    """The tags CloudFormation puts on a stack resource, and the world's user tag."""
    arn = f"arn:aws:cloudformation:us-east-1:123456789012:stack/{STACK_NAME}/0f1e2d3c"
    return {
        "aws:cloudformation:stack-name": STACK_NAME,
        "aws:cloudformation:stack-id": arn,
        "aws:cloudformation:logical-id": "".join(p.title() for p in logical_id.split("-")),
        **USER_TAGS,
    }


def attribute_size(value: Any) -> int:
    """A value's size by DynamoDB's rules (strings and binaries by length, numbers about one
    byte per two significant digits plus one, containers 3 bytes plus their elements)."""
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, Decimal | int | float):
        digits = Decimal(str(value)).normalize().as_tuple().digits
        return 1 + (len(digits) + 1) // 2
    if isinstance(value, dict):
        return 3 + sum(len(k.encode()) + attribute_size(v) for k, v in value.items())
    if isinstance(value, list | set | frozenset | tuple):
        return 3 + sum(attribute_size(v) for v in value)
    raise TypeError(f"no DynamoDB size for {type(value).__name__}")


def item_size(item: dict[str, Any]) -> int:
    return sum(len(k.encode("utf-8")) + attribute_size(v) for k, v in item.items())


def create_table(ddb: Any, spec: TableSpec, provisioned: dict[str, int] | None = None) -> None:
    """On-demand, or PROVISIONED with `provisioned` throughput (its indexes too)."""
    attrs = [{"AttributeName": spec.partition_key, "AttributeType": "S"}]
    keys = [{"AttributeName": spec.partition_key, "KeyType": "HASH"}]
    if spec.sort_key:
        attrs.append({"AttributeName": spec.sort_key, "AttributeType": "S"})
        keys.append({"AttributeName": spec.sort_key, "KeyType": "RANGE"})
    extra: dict[str, Any] = {}
    if spec.gsi:
        gsis = []
        for index in spec.gsi:
            attr = index.removesuffix("-index")
            attrs.append({"AttributeName": attr, "AttributeType": "S"})
            gsis.append(
                {
                    "IndexName": index,
                    "KeySchema": [{"AttributeName": attr, "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                    **({"ProvisionedThroughput": provisioned} if provisioned else {}),
                }
            )
        extra["GlobalSecondaryIndexes"] = gsis
    if provisioned:
        extra["ProvisionedThroughput"] = provisioned
    ddb.create_table(
        TableName=spec.name,
        AttributeDefinitions=attrs,
        KeySchema=keys,
        BillingMode="PROVISIONED" if provisioned else "PAY_PER_REQUEST",
        **extra,
    )


def provisioned_throughput(spec: TableSpec, shape: WorldShape) -> dict[str, int] | None:
    """The throughput a company-scoped table gets in a provisioned world, else None."""
    if shape.provisioned_write_units is None or spec.group != "company":
        return None
    return {
        "ReadCapacityUnits": shape.provisioned_read_units,
        "WriteCapacityUnits": shape.provisioned_write_units,
    }


def put_items(ddb_resource: Any, table: str, items: Iterator[dict[str, Any]]) -> int:
    count = 0
    with ddb_resource.Table(table).batch_writer() as writer:
        for item in items:
            writer.put_item(Item=item)
            count += 1
    return count


def item_id(entity: str, n: int) -> str:
    return f"{entity[:3]}-{n:06d}"


class ItemFactory:
    """Plausible items for the seeded tables, deterministic for a given seed."""

    def __init__(self, runbook: Runbook, seed: int = 7) -> None:
        self.rb = runbook
        self.rng = random.Random(seed)
        emb = runbook.embedded
        self.users: list[str] = list(emb.get("users", []))
        self.companies: list[str] = list(emb.get("companies", []))
        self.orphans: list[str] = list(emb.get("orphan_users", []))

    def membership(self) -> dict[str, str]:
        """Each known user belongs to one company, round-robin."""
        return {u: self.companies[i % len(self.companies)] for i, u in enumerate(self.users)}

    def legacy_users(self) -> list[str]:
        return self.users + self.orphans

    def _padding(self, spec: TableSpec) -> str:
        if not spec.items or not spec.size_bytes:
            return ""
        per_item = min(spec.size_bytes // spec.items, MAX_PADDING)
        return "x" * max(0, per_item - 200)

    def entity_items(
        self, entity: EntitySpec, count: int, spec: TableSpec, counts: dict[str, int]
    ) -> Iterator[dict]:
        """Legacy items, users round-robin; relations point at an item of the same user."""
        pad = self._padding(spec)
        users = self.legacy_users()
        for n in range(count):
            user = users[n % len(users)]
            item: dict[str, Any] = {
                entity.user_attr: user,
                entity.id_attr: item_id(entity.name, n),
            }
            item.update(self._fields(entity, n))
            for attr, target in entity.relations.items():
                same_user = n % len(users)
                if same_user < counts.get(target, 0):
                    item[attr] = item_id(target, same_user)
            if pad:
                item["receiptData"] = pad
            yield item

    def _fields(self, entity: EntitySpec, n: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for attr, kind in entity.required.items():
            if attr == entity.id_attr:
                continue
            if kind == "number":
                out[attr] = Decimal(self.rng.randint(100, 500_000)) / 100
            elif attr == entity.date_attr:
                out[attr] = f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}"
            else:
                out[attr] = f"{entity.name.rstrip('s').title()} {n}"
        out["description"] = f"Seeded {entity.name} record {n}"
        return out

    def company_items(self, spec: TableSpec) -> Iterator[dict[str, Any]]:
        mapping = self.rb.mapping
        members = self.membership()
        if mapping and spec.name == mapping.company_users_table:
            for user, company in list(members.items())[: spec.items]:
                yield {spec.partition_key: company, mapping.user_attr: user, "role": "admin"}
            return
        if mapping and spec.name == mapping.companies_table:
            for company in self.companies[: spec.items]:
                yield {
                    spec.partition_key: company,
                    "name": company.removeprefix("comp-").title(),
                    "settings": {"currency": "USD"},
                    "subscription": "pro",
                }
            return
        entity = self.rb.find_entity_into(spec.name)
        for n in range(spec.items):
            company = self.companies[n % len(self.companies)] if self.companies else "comp-0"
            item: dict[str, Any] = {spec.partition_key: company}
            if spec.sort_key:
                item[spec.sort_key] = f"native-{n:05d}"
            if entity:
                item.update(self._fields(entity, n))
                item["createdBy"] = self.users[n % len(self.users)] if self.users else "user"
                item["createdAt"] = "2024-11-01T10:00:00Z"
                item["updatedAt"] = "2024-11-01T10:00:00Z"
            for gsi in spec.gsi:
                item[gsi.removesuffix("-index")] = f"INV-{n:05d}"
            yield item

    def generic_items(self, spec: TableSpec) -> Iterator[dict[str, Any]]:
        for n in range(spec.items):
            item: dict[str, Any] = {spec.partition_key: f"{spec.partition_key}-{n:05d}"}
            if spec.sort_key:
                item[spec.sort_key] = f"{spec.sort_key}-{n:05d}"
            item["payload"] = json.dumps({"n": n})
            yield item


def reshape_legacy(
    entity: EntitySpec,
    target: TableSpec | None,
    items: Iterator[dict[str, Any]],
    shape: WorldShape,
    oversize_entity: str | None = None,
) -> Iterator[dict[str, Any]]:
    """The legacy items of a real-shaped world (see WorldShape); the oversize item is the
    third of `oversize_entity` (one in the whole world)."""
    index_attr = target.gsi[0].removesuffix("-index") if target and target.gsi else None
    for n, item in enumerate(items):
        if shape.odd_index_keys and index_attr:
            item[index_attr] = {0: Decimal(1000 + n), 1: ""}.get(n, f"INV-L-{n:05d}")
        if shape.oversize_item and n == 2 and entity.name == oversize_entity:
            item.pop("receiptData", None)
            room = MAX_ITEM_BYTES - OVERSIZE_MARGIN - item_size(item) - len("receiptData")
            item["receiptData"] = "r" * room
        yield item


def wait_tables_active(ddb: Any, names: list[str], timeout: float = 120.0) -> None:
    """Tables start CREATING on AWS (and dynalite): wait until every one is ACTIVE."""
    waiter = ddb.get_waiter("table_exists")
    for name in names:
        waiter.wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": int(timeout / 0.2)})


def seed_tables(
    session: Any, runbook: Runbook, scale: int = 1, shape: WorldShape | None = None
) -> dict[str, int]:
    """Create and fill the inventory's tables; legacy entity tables get `items * scale`."""
    shape = shape or WorldShape()
    ddb = session.client("dynamodb")
    ddb_res = session.resource("dynamodb")
    factory = ItemFactory(runbook)
    by_source = {e.source: e for e in runbook.entities}
    tables = {t.name: t for t in runbook.inventory.tables}
    entity_counts = {
        e.name: tables[e.source].items * scale for e in runbook.entities if e.source in tables
    }
    for spec in runbook.inventory.tables:
        create_table(ddb, spec, provisioned_throughput(spec, shape))
    wait_tables_active(ddb, [t.name for t in runbook.inventory.tables])
    if shape.stack_tags:
        for spec in runbook.inventory.tables:
            arn = ddb.describe_table(TableName=spec.name)["Table"]["TableArn"]
            tags = [{"Key": k, "Value": v} for k, v in stack_tags(spec.name).items()]
            ddb.tag_resource(ResourceArn=arn, Tags=tags)
    counts: dict[str, int] = {}
    for spec in runbook.inventory.tables:
        if spec.name in by_source:
            entity = by_source[spec.name]
            items = reshape_legacy(
                entity,
                tables.get(entity.target),
                factory.entity_items(entity, spec.items * scale, spec, entity_counts),
                shape,
                runbook.entities[0].name,
            )
        elif spec.partition_key == "companyId":
            items = factory.company_items(spec)
        else:
            items = factory.generic_items(spec)
        counts[spec.name] = put_items(ddb_res, spec.name, items)
    return counts


def seed_world(
    session: Any,
    runbook: Runbook,
    world_id: str,
    scale: int = 1,
    shape: WorldShape | None = None,
) -> dict[str, int]:
    """Create every inventory resource; legacy entity tables get `items * scale` items."""
    shape = shape or WorldShape()
    counts = seed_tables(session, runbook, scale, shape)
    _seed_functions(session, runbook, shape)
    _seed_api(session, runbook, shape)
    seed_notifications(session, runbook)
    _seed_buckets(session, runbook)
    legacy = legacy_function_of(runbook) if shape.legacy_function else None
    if legacy and shape.legacy_stream:
        seed_legacy_stream(session, legacy[1], legacy[0], shape.legacy_alias)
    session.client("ssm").put_parameter(
        Name=WORLD_ID_PARAMETER, Value=world_id, Type="String", Overwrite=True
    )
    return counts


def inbox_name(topic_arn: str) -> str:
    """The rehearsal's SQS queue subscribed to the runbook's topic: who reads the notices."""
    return topic_arn.rsplit(":", 1)[-1] + "-inbox"


def seed_notifications(session: Any, runbook: Runbook) -> str | None:
    """`[notify]`'s SNS topic, with an SQS queue subscribed to it (raw delivery: each message
    is the notice as published); returns the queue's URL, or None without a topic."""
    spec = runbook.notify
    if spec is None or spec.sns_topic_arn is None:
        return None
    name = spec.sns_topic_arn.rsplit(":", 1)[-1]
    topic = session.client("sns").create_topic(Name=name)["TopicArn"]
    sqs = session.client("sqs")
    queue_url = sqs.create_queue(QueueName=inbox_name(topic))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    session.client("sns").subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    return queue_url


def _seed_buckets(session: Any, runbook: Runbook) -> None:
    """The export buckets the runbook's step-functions copies name (on AWS they exist
    already: the operator names one of theirs)."""
    s3 = session.client("s3")
    for step in runbook.steps:
        if step.action == "migrate_entity" and step.params.get("backend") == "step-functions":
            bucket = str(step.params.get("bucket"))
            if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
                s3.create_bucket(Bucket=bucket)


def aliased_functions(runbook: Runbook, shape: WorldShape) -> dict[str, str]:
    """Functions the API invokes through an alias: function -> alias."""
    out = {}
    if shape.alias:
        out = {
            f.name: shape.alias
            for f in runbook.inventory.functions
            if f.group in shape.alias_groups
        }
    legacy = legacy_function_of(runbook) if shape.legacy_function else None
    if legacy:
        out[legacy[0]] = shape.legacy_alias
    return out


def _seed_functions(session: Any, runbook: Runbook, shape: WorldShape) -> None:
    iam = session.client("iam")
    role = iam.create_role(
        RoleName=LAMBDA_ROLE,
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    lam = session.client("lambda")
    logs = session.client("logs")
    code = handler_zip()
    base_env = {k: str(v) for k, v in runbook.embedded.get("function_env", {}).items()}
    legacy = legacy_function_of(runbook) if shape.legacy_function else None
    for fn in runbook.inventory.functions:
        env = dict(base_env)
        if fn.table:
            env["TABLE_NAME"] = fn.table
        settings: dict[str, Any] = {"Runtime": "python3.12"}
        if legacy and fn.name == legacy[0]:
            settings = legacy_settings(session, shape.legacy_runtime)
        with as_stack(lam):  # CloudFormation's tags; a runtime from before AWS blocked it
            lam.create_function(
                FunctionName=fn.name,
                Role=role,
                Handler="index.handler",
                Code={"ZipFile": code},
                Environment={"Variables": env},
                **settings,
                **({"Tags": stack_tags(fn.name)} if shape.stack_tags else {}),
            )
    for name, alias in aliased_functions(runbook, shape).items():
        if legacy and name == legacy[0]:
            seed_legacy_function(session, name, alias)
            continue
        lam.get_waiter("function_active_v2").wait(FunctionName=name)
        version = lam.publish_version(FunctionName=name, Description="seeded release")["Version"]
        lam.create_alias(FunctionName=name, Name=alias, FunctionVersion=version)
    for group in runbook.inventory.log_groups():
        logs.create_log_group(logGroupName=group)


def _seed_api(session: Any, runbook: Runbook, shape: WorldShape) -> None:
    api = runbook.inventory.api
    if api is None:
        return
    if shape.staging_api and shape.staging_api != api.stage:
        _seed_one_api(session, runbook, shape, shape.staging_api)  # the older stack
    _seed_one_api(session, runbook, shape, api.stage)


def _seed_one_api(session: Any, runbook: Runbook, shape: WorldShape, stage: str) -> None:
    api = runbook.inventory.api
    assert api is not None
    aliased = aliased_functions(runbook, shape)
    gw = session.client("apigateway")
    lam = session.client("lambda")
    rest = gw.create_rest_api(name=api.name)
    ids = {
        "/": next(
            r["id"] for r in gw.get_resources(restApiId=rest["id"])["items"] if r["path"] == "/"
        )
    }
    region = session.region_name
    for route in api.routes:
        parent = "/"
        for part in route.path.strip("/").split("/"):
            path = parent.rstrip("/") + "/" + part
            if path not in ids:
                ids[path] = gw.create_resource(
                    restApiId=rest["id"], parentId=ids[parent], pathPart=part
                )["id"]
            parent = path
        for i, method in enumerate(route.methods):
            gw.put_method(
                restApiId=rest["id"],
                resourceId=ids[route.path],
                httpMethod=method,
                authorizationType="NONE",
            )
            fn = route.functions[min(i, len(route.functions) - 1)] if route.functions else None
            if fn:
                arn = lam.get_function(FunctionName=fn)["Configuration"]["FunctionArn"]
                if fn in aliased:
                    arn = f"{arn}:{aliased[fn]}"
                uri = (
                    f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/"
                    f"{arn}/invocations"
                )
                gw.put_integration(
                    restApiId=rest["id"],
                    resourceId=ids[route.path],
                    httpMethod=method,
                    type="AWS_PROXY",
                    integrationHttpMethod="POST",
                    uri=uri,
                )
    gw.create_deployment(restApiId=rest["id"], stageName=stage)
    legacy = legacy_function_of(runbook) if shape.legacy_function else None
    if legacy:
        allow_api(session, legacy[0], aliased[legacy[0]], rest["id"])
