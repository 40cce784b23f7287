"""Errors that name what they were about: once retries are exhausted, botocore's message says
"when calling the Scan operation" but not which table; the operator needs the resource."""

from __future__ import annotations

from typing import Any

RESOURCE_PARAMS = (
    "TableName", "FunctionName", "BackupArn", "ResourceArn", "logGroupName", "restApiId",
    "Name", "AlarmNames",
)  # fmt: skip
_KEY = "runbook_resource"


def _remember(params: Any = None, context: Any = None, **_: Any) -> None:
    if not isinstance(params, dict) or context is None:
        return
    for key in RESOURCE_PARAMS:
        if params.get(key):
            context[_KEY] = f"{key}={params[key]}"
            return
    tables = params.get("RequestItems")
    if isinstance(tables, dict) and tables:
        context[_KEY] = f"TableName={','.join(sorted(tables))}"
    ops = params.get("TransactItems")
    if isinstance(ops, list) and ops:  # [{"Put": {"TableName": ...}}, {"ConditionCheck": ...}]
        names = {op.get("TableName") for entry in ops for op in entry.values()}
        context[_KEY] = f"TableName={','.join(sorted(n for n in names if n))}"


def _name_in_error(parsed: Any = None, context: Any = None, **_: Any) -> None:
    error = parsed.get("Error") if isinstance(parsed, dict) else None
    resource = context.get(_KEY) if context is not None else None
    if isinstance(error, dict) and resource and resource not in str(error.get("Message", "")):
        error["Message"] = f"{error.get('Message', '')} [{resource}]".strip()


def name_resources(client: Any) -> Any:
    """Register the two hooks on a boto3 client; returns it."""
    client.meta.events.register("before-parameter-build", _remember)
    client.meta.events.register("after-call", _name_in_error)
    return client
