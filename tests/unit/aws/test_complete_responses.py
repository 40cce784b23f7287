"""The before-parse check on real botocore service models: which successful answers are short."""

from __future__ import annotations

import json

import botocore.parsers
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


XML_SHORT = [
    ("sts", "GetCallerIdentity", b'<GetCallerIdentityResponse xmlns="x"><GetCallerIdentityRes'),
    ("sts", "GetCallerIdentity", b"<html><body>502 Bad Gateway</body></html>"),  # well-formed
    ("s3", "ListObjectsV2", b"<ListBucketResult><Contents><Key>a</Key></Conte"),
]


@pytest.mark.parametrize(("service", "operation", "body"), XML_SHORT)
def test_an_xml_answer_cut_short_or_not_the_answer_is_short(service, operation, body) -> None:
    response = answer(service, operation, body)
    assert response["status_code"] == 500 and b"IncompleteResponse" in response["body"]
    model = MODELS.get_service_model(service)
    protocol = model.resolved_protocol
    parsed = botocore.parsers.create_parser(protocol).parse(
        response, model.operation_model(operation).output_shape
    )
    assert parsed["Error"]["Code"] == INCOMPLETE  # botocore reads it as that error


@pytest.mark.parametrize(
    ("service", "operation", "body"),
    [
        ("sts", "GetCallerIdentity", b"<GetCallerIdentityResponse><GetCallerIdentityResult>"
         b"<Account>1</Account></GetCallerIdentityResult></GetCallerIdentityResponse>"),
        ("s3", "ListObjectsV2", b"<ListBucketResult><KeyCount>0</KeyCount></ListBucketResult>"),
        ("s3", "PutObject", b""),  # headers only
    ],
)  # fmt: skip
def test_a_whole_xml_answer_passes_untouched(service, operation, body) -> None:
    response = answer(service, operation, body)
    assert response["status_code"] == 200 and response["body"] == body


def test_a_page_that_is_not_the_answer_is_short_even_when_well_formed() -> None:
    html = b"<html><body>502 Bad Gateway</body></html>"
    assert answer("s3", "ListObjectsV2", html)["status_code"] == 500
    unversioned = b'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>'
    assert answer("s3", "GetBucketVersioning", unversioned)["status_code"] == 200  # empty: whole
    blocked = b"<PublicAccessBlockConfiguration><BlockPublicAcls>true</BlockPublicAcls>" \
        b"</PublicAccessBlockConfiguration>"  # fmt: skip
    assert answer("s3", "GetPublicAccessBlock", blocked)["status_code"] == 200  # its payload's
