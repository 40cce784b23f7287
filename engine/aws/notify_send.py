"""Deliver one notification: an SNS Publish, or a webhook POST (standard library).

A webhook URL carries its token: it is read from the environment variable or the SSM
parameter the runbook names, kept in memory only, and never put in an error, a log line or a
journal. Every error here is one short line that names no URL.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlparse

SUBJECT_CHARS = 100  # SNS's limit for an email subject


class DeliveryFailed(Exception):
    """One attempt failed; the message is safe to journal (no URL, no token)."""


def subject(line: str) -> str:
    """SNS subjects: printable ASCII, one line, at most 100 characters."""
    text = "".join(c if 32 <= ord(c) < 127 else "?" for c in line)
    return text if len(text) <= SUBJECT_CHARS else text[: SUBJECT_CHARS - 1] + "~"


def publish_sns(sns: Any, topic_arn: str, line: str, body: dict[str, Any]) -> None:
    try:
        sns.publish(
            TopicArn=topic_arn,
            Subject=subject(line),
            Message=line + "\n" + json.dumps(body, sort_keys=True),
            MessageAttributes={
                "event_id": {"DataType": "String", "StringValue": str(body["event_id"])}
            },
        )
    except Exception as exc:  # botocore's messages name the topic, never a secret
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        raise DeliveryFailed(f"SNS: {code or type(exc).__name__}") from None


def webhook_url(env_name: str | None, parameter: str | None, ssm: Any) -> str:
    """The URL from where the runbook says it is kept (DeliveryFailed: not there)."""
    if env_name:
        url = os.environ.get(env_name, "")
        if not url:
            raise DeliveryFailed(f"webhook: environment variable {env_name} is not set")
    else:
        try:
            answer = ssm.get_parameter(Name=parameter, WithDecryption=True)
            url = answer["Parameter"]["Value"]
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            raise DeliveryFailed(
                f"webhook: SSM parameter {parameter} unreadable ({code or type(exc).__name__})"
            ) from None
    if urlparse(url).scheme not in ("https", "http") or not urlparse(url).hostname:
        raise DeliveryFailed("webhook: the configured value is not an http(s) URL")
    return url


def post_webhook(url: str, line: str, body: dict[str, Any], timeout: float) -> None:
    """POST {"text": line, ...body} (Slack's and most chat webhooks' shape)."""
    data = json.dumps({"text": line, **body}, sort_keys=True).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read(4096)
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(f"webhook: HTTP {exc.code}") from None
    except (TimeoutError, urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        what = "timed out" if isinstance(reason, TimeoutError) else type(reason).__name__
        raise DeliveryFailed(f"webhook: {what}") from None
