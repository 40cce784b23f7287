"""A 200 whose body is cut short is an error, never an empty answer.

botocore parses a JSON body it cannot read as `{"message": <body>}` and raises nothing, so a
Scan page cut short mid-response looks like the last, empty page (AWS's DynamoDB responses carry
`x-amz-crc32`, which botocore checks; emulators and proxies do not). Here, before botocore
parses a successful answer of a JSON-protocol service, the body must be a JSON object holding
the fields its operation always returns (an XML answer, engine/aws/complete_xml.py: well-formed,
and a query answer named after its operation); otherwise the answer is turned into an
`IncompleteResponse` error, which the engine's retry handler (engine/aws/retries.py) retries like
a dropped connection and which, once retries are exhausted, names the call and the resource.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from engine.aws.complete_xml import XML_PROTOCOLS, xml_error_body, xml_problem

INCOMPLETE = "IncompleteResponse"
# json: every answer is a JSON object. rest-json may answer with headers or nothing (204): there
# a body, when one comes, must be JSON, and only the operations listed below must have one
JSON_PROTOCOLS = ("json", "rest-json")
# what AWS always returns on success, per operation (from the service models and AWS's docs):
# an answer without these cannot be told apart from "nothing there"
ALWAYS_RETURNED: dict[tuple[str, str], tuple[str, ...]] = {
    ("dynamodb", "Scan"): ("Count", "ScannedCount"),
    ("dynamodb", "Query"): ("Count", "ScannedCount"),
    ("dynamodb", "DescribeTable"): ("Table",),
    ("dynamodb", "BatchGetItem"): ("Responses", "UnprocessedKeys"),
    ("dynamodb", "BatchWriteItem"): ("UnprocessedItems",),
    ("dynamodb", "DescribeContinuousBackups"): ("ContinuousBackupsDescription",),
    ("dynamodb", "CreateBackup"): ("BackupDetails",),
    ("dynamodb", "DescribeBackup"): ("BackupDescription",),
    ("dynamodb", "ListTables"): ("TableNames",),
    ("cloudwatch", "GetMetricData"): ("MetricDataResults",),
    # migrate_entity's capacity budget: no bounds read is not "no auto scaling"
    ("application-autoscaling", "DescribeScalableTargets"): ("ScalableTargets",),
    ("logs", "DescribeLogGroups"): ("logGroups",),
    ("ssm", "GetParameter"): ("Parameter",),
    # a flags merge reads the environment it keeps: an answer cut short must never read as
    # "no variables" (a flags-only environment would wipe the others)
    ("lambda", "GetFunctionConfiguration"): ("FunctionName",),
    ("lambda", "GetFunction"): ("Configuration",),
    ("lambda", "ListFunctions"): ("Functions",),
    ("lambda", "GetAlias"): ("FunctionVersion",),
    ("lambda", "PublishVersion"): ("Version",),
    # issue 19.2: an archive cut short must never read as "no versions, aliases, mappings"
    ("lambda", "ListVersionsByFunction"): ("Versions",),
    ("lambda", "ListAliases"): ("Aliases",),
    ("lambda", "ListEventSourceMappings"): ("EventSourceMappings",),
    ("lambda", "GetPolicy"): ("Policy",),
    ("lambda", "GetFunctionUrlConfig"): ("FunctionUrl", "AuthType"),
    ("lambda", "GetEventSourceMapping"): ("UUID",),
    ("lambda", "CreateEventSourceMapping"): ("UUID",),
    ("lambda", "CreateFunctionUrlConfig"): ("FunctionUrl",),
    ("lambda", "CreateAlias"): ("FunctionVersion",),
}


def missing_fields(service: str, operation: Any, body: bytes) -> str | None:
    """Why a successful answer cannot be the whole answer, or None when it can."""
    if operation.output_shape is None or not operation.output_shape.members:
        return None  # an operation that answers nothing: an empty body is the answer
    try:
        parsed = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, ValueError):
        return f"the body is not JSON ({len(body)} bytes; cut short?)"
    if not isinstance(parsed, dict):
        return f"the body is not a JSON object ({len(body)} bytes)"
    absent = [f for f in ALWAYS_RETURNED.get((service, operation.name), ()) if f not in parsed]
    if absent:
        return f"the answer lacks {', '.join(absent)}, which {operation.name} always returns"
    return None


def check_answer(operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
    if not 200 <= int(response_dict.get("status_code", 0)) < 300:
        return
    if operation_model.has_streaming_output:
        return
    protocol = operation_model.service_model.resolved_protocol
    body = response_dict.get("body", b"")
    if protocol in JSON_PROTOCOLS:
        why = _json_problem(protocol, operation_model, body)
    elif protocol in XML_PROTOCOLS:
        why = xml_problem(protocol, operation_model, body)
    else:
        return
    if why is None:
        return
    message = f"incomplete answer to {operation_model.name}: {why}"
    response_dict["status_code"] = 500  # parsed as an error: never as an empty answer
    if protocol in XML_PROTOCOLS:
        response_dict["body"] = xml_error_body(protocol, INCOMPLETE, message)
    else:
        response_dict["body"] = json.dumps({"__type": INCOMPLETE, "message": message}).encode()


def _json_problem(protocol: str, operation_model: Any, body: bytes) -> str | None:
    service = operation_model.service_model.service_name
    listed = (service, operation_model.name) in ALWAYS_RETURNED
    if protocol == "rest-json" and not listed and not (body and _has_body_members(operation_model)):
        return None  # headers only, or nothing: only a listed operation's empty body is short
    return missing_fields(service, operation_model, body)


def _has_body_members(operation_model: Any) -> bool:
    """A rest-json answer carries a JSON body: some output member lives in it, not a header."""
    shape = operation_model.output_shape
    members = shape.members if shape is not None else {}
    return any(m.serialization.get("location") is None for m in members.values())


def _raise_incomplete(http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
    """botocore raises on the HTTP status, which was 200: raise for it, once retries are
    exhausted (after-call comes after the last attempt)."""
    if is_incomplete(parsed) and 200 <= http_response.status_code < 300:
        raise ClientError(parsed, model.name)


def is_incomplete(parsed: Any) -> bool:
    """The parsed answer is one `complete_responses` turned into an error."""
    error = parsed.get("Error") if isinstance(parsed, dict) else None
    return isinstance(error, dict) and error.get("Code") == INCOMPLETE


def complete_responses(client: Any) -> Any:
    """Register the check on a boto3 client; returns it."""
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-parse.{service}", check_answer)
    # last: the error names its resource first (engine/aws/resource_errors.py)
    client.meta.events.register_last("after-call", _raise_incomplete)
    return client
