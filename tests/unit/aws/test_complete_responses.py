"""The before-parse check on real botocore service models: which successful answers are short."""

from __future__ import annotations

import json

import botocore.session
import pytest

from engine.aws.complete_responses import INCOMPLETE, check_answer

MODELS = botocore.session.get_session()


def answer(service: str, operation: str, body: bytes, status: int = 200) -> dict:
    response = {"status_code": status, "headers": {}, "body": body}
    check_answer(MODELS.get_service_model(service).operation_model(operation), response)
    return response


def is_short(response: dict) -> bool:
    if response["status_code"] != 500:
        return False
    return json.loads(response["body"])["__type"] == INCOMPLETE


@pytest.mark.parametrize(
    ("service", "operation", "body"),
    [
        ("lambda", "PublishVersion", b'{"FunctionName": "f", "Ver'),  # cut short
        ("lambda", "PublishVersion", b"{}"),  # listed: Version always comes back
        ("lambda", "UpdateAlias", b"<html>502 Bad Gateway</html>"),  # unlisted, body not JSON
        ("apigateway", "CreateDeployment", b'{"id": "abc", "crea'),
        ("dynamodb", "CreateBackup", b'{"BackupDetails": {'),
    ],
)
def test_a_body_that_cannot_be_the_whole_answer_is_short(service, operation, body) -> None:
    assert is_short(answer(service, operation, body))


@pytest.mark.parametrize(
    ("service", "operation", "body", "status"),
    [
        ("lambda", "PublishVersion", b'{"FunctionName": "f", "Version": "3"}', 200),
        ("lambda", "DeleteFunction", b"", 204),  # answers nothing
        ("lambda", "UpdateAlias", b"", 200),  # unlisted and empty: not known to be short
        ("apigateway", "DeleteMethod", b"", 202),
        ("lambda", "PublishVersion", b"<html>", 502),  # an error is botocore's to read
    ],
)
def test_a_whole_answer_passes_untouched(service, operation, body, status) -> None:
    response = answer(service, operation, body, status)
    assert response["status_code"] == status and response["body"] == body
