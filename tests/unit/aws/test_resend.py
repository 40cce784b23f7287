"""Calls AWS cannot repeat safely: which lost answers are not resent, and create_once."""

from __future__ import annotations

import json

import botocore.session
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from engine.aws.complete_responses import INCOMPLETE
from engine.aws.resend import answer_lost, create_once, resend_unsafe

MODELS = botocore.session.get_session()
LOST = ConnectionClosedError(endpoint_url="http://aws")
INCOMPLETE_ERROR = ClientError({"Error": {"Code": INCOMPLETE, "Message": "cut"}}, "CreateBackup")


def retry_kwargs(service: str, operation: str, **more: object) -> dict:
    model = MODELS.get_service_model(service).operation_model(operation)
    return {"operation": model, "caught_exception": None, "response": None, **more}


def test_a_create_without_a_token_is_not_resent_once_it_may_have_applied() -> None:
    assert resend_unsafe(retry_kwargs("dynamodb", "CreateBackup", caught_exception=LOST))
    parsed = {"Error": {"Code": INCOMPLETE}}
    assert resend_unsafe(retry_kwargs("dynamodb", "CreateBackup", response=(None, parsed)))


def test_a_request_that_never_left_or_a_safe_call_is_resent() -> None:
    never_sent = EndpointConnectionError(endpoint_url="http://aws")
    assert not resend_unsafe(retry_kwargs("dynamodb", "CreateBackup", caught_exception=never_sent))
    assert not resend_unsafe(retry_kwargs("dynamodb", "PutItem", caught_exception=LOST))
    throttled = {"Error": {"Code": "ThrottlingException"}}
    assert not resend_unsafe(retry_kwargs("dynamodb", "CreateBackup", response=(None, throttled)))


def test_which_failures_are_a_lost_answer() -> None:
    assert answer_lost(LOST) and answer_lost(INCOMPLETE_ERROR)
    assert not answer_lost(EndpointConnectionError(endpoint_url="http://aws"))
    refused = ClientError({"Error": {"Code": "LimitExceededException"}}, "CreateBackup")
    assert not answer_lost(refused) and not answer_lost(ValueError("x"))


def test_create_once_takes_what_the_lost_request_made() -> None:
    calls: list[str] = []

    def create() -> str:
        calls.append("create")
        raise LOST

    assert create_once(create, lambda: "arn:first") == "arn:first"
    assert calls == ["create"]  # never sent again


def test_create_once_sends_again_when_nothing_was_made() -> None:
    answers = iter([INCOMPLETE_ERROR, None])

    def create() -> str:
        error = next(answers)
        if error is not None:
            raise error
        return "arn:second"

    assert create_once(create, lambda: None) == "arn:second"


def test_create_once_raises_a_refusal_as_it_is() -> None:
    refused = ClientError({"Error": {"Code": "ValidationException"}}, "CreateBackup")

    def create() -> str:
        raise refused

    with pytest.raises(ClientError) as raised:
        create_once(create, lambda: pytest.fail("a refusal is not a lost answer"))
    assert raised.value is refused
    assert json.dumps(raised.value.response["Error"])  # untouched
