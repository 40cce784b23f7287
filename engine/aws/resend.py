"""Calls AWS cannot repeat safely, and what to do when their answer is lost.

Most calls the engine makes can be sent again when an answer is lost on the way (a connection
closed mid-body, a body cut short): a put of the same item, a delete, a configuration update.
A create that AWS gives no client token to is different: DynamoDB's CreateBackup, sent again,
makes a second backup; a restore or a create sent again fails as "already exists". For these,
a lost answer is not retried blindly (engine/aws/retries.py asks `resend_unsafe`); the caller
looks for what the first request made (`create_once`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
)
from urllib3.exceptions import HTTPError as Urllib3Error

from engine.aws.complete_responses import INCOMPLETE, is_incomplete

T = TypeVar("T")

# (service, operation): each request creates one more resource, and no token makes it once
# or, sent again once applied, fails as "already there" (a restore, a create, a permission)
UNSAFE_TO_RESEND: frozenset[tuple[str, str]] = frozenset(
    {
        ("dynamodb", "CreateBackup"),
        ("dynamodb", "RestoreTableFromBackup"),
        ("lambda", "CreateFunction"),
        ("lambda", "AddPermission"),
        ("lambda", "CreateAlias"),
        ("lambda", "CreateEventSourceMapping"),
        ("lambda", "CreateFunctionUrlConfig"),
        ("apigateway", "CreateResource"),
        ("apigateway", "PutMethod"),
    }
)
# failures that prove the request never reached AWS: resending cannot make a second one
NEVER_SENT = (EndpointConnectionError, ConnectTimeoutError)


def resend_unsafe(retry_kwargs: dict[str, Any]) -> bool:
    """botocore's needs-retry arguments: the request may have been applied and must not be
    sent again blindly."""
    operation = retry_kwargs.get("operation")
    if operation is None:
        return False
    key = (operation.service_model.service_name, operation.name)
    if key not in UNSAFE_TO_RESEND:
        return False
    caught = retry_kwargs.get("caught_exception")
    if caught is not None:
        return not isinstance(caught, NEVER_SENT)
    response = retry_kwargs.get("response")
    parsed = response[1] if isinstance(response, tuple) and len(response) == 2 else None
    return is_incomplete(parsed)


def answer_lost(exc: BaseException) -> bool:
    """The request may have been applied, but its answer never arrived whole."""
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code") == INCOMPLETE
    if isinstance(exc, NEVER_SENT):
        return False
    return isinstance(exc, (HTTPClientError, Urllib3Error))


def create_once(create: Callable[[], T], find: Callable[[], T | None]) -> T:
    """`create()`; when its answer is lost, what `find()` finds it made, else `create()` again
    (nothing was made: the request never applied)."""
    try:
        return create()
    except Exception as exc:
        if not answer_lost(exc):
            raise
        found = find()
        return found if found is not None else create()
