"""The XML half of the cut-short check (engine/aws/complete_responses.py): query (STS, IAM)
and rest-xml (S3) answers. botocore raises ResponseParserError on XML it cannot read, which no
retry handler sees, and reads a well-formed page that is not the answer (a proxy's HTML error
page) as a KeyError; here both become IncompleteResponse, retried like a dropped connection."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

XML_PROTOCOLS = ("query", "rest-xml")


def xml_problem(protocol: str, operation: Any, body: bytes) -> str | None:
    """Why a successful XML answer cannot be the whole answer, or None when it can."""
    if not body:
        return None  # headers only (rest-xml), or an answer a check above this one settles
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return f"the body is not XML ({len(body)} bytes; cut short?)"
    tag = _local(root.tag)
    if protocol == "query":  # every query answer is <{Operation}Response>
        expected = f"{operation.name}Response"
        return None if tag == expected else f"the answer is <{tag}>, not <{expected}>"
    children = {_local(child.tag) for child in root}
    known = _element_names(operation.output_shape)
    if children and known and not children & known:  # a page, not this answer (an empty
        return f"the answer <{tag}> holds none of {operation.name}'s elements"  # one can be)
    return None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _element_names(shape: Any) -> set[str]:
    """The XML elements a rest-xml answer's root may hold (its payload's, when it has one)."""
    if shape is None:
        return set()
    payload = shape.serialization.get("payload")
    if payload:
        shape = shape.members[payload]
    names: set[str] = set()
    for name, member in getattr(shape, "members", {}).items():
        if member.serialization.get("location"):
            continue  # a header or the status code
        names.add(member.serialization.get("name", name))
        if member.type_name == "list" and member.serialization.get("flattened"):
            names.add(member.member.serialization.get("name", name))
    return names


def xml_error_body(protocol: str, code: str, message: str) -> bytes:
    """An error document botocore's parser for `protocol` reads as `code`."""
    error = f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
    if protocol == "query":
        return f"<ErrorResponse>{error}<RequestId>-</RequestId></ErrorResponse>".encode()
    return error.encode()
