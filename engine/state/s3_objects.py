"""The S3 calls state makes, each with its contract (botocore's s3 model, AWS's conditional
requests): a PutObject with `If-None-Match: *` or `If-Match: <etag>` answers 412
PreconditionFailed when the condition fails and 409 ConditionalRequestConflict when another
conditional write raced it (retry); a GetObject with `If-None-Match` answers 304; NoSuchKey
is "absent". Server-side encryption on every write: SSE-S3, or SSE-KMS with a key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from engine.state.errors import JournalError


class StateUnreachable(Exception):
    """S3 did not answer (connection, timeout, 500/503 after botocore's retries)."""


class PreconditionFailed(Exception):
    """412: the object is not the version this process expected (or exists already)."""


class ConditionalConflict(Exception):
    """409 ConditionalRequestConflict: another conditional write raced this one; retry."""


class NotModified(Exception):
    """304: the object is the version this process holds."""


_ABSENT = {"NoSuchKey", "404", "NotFound"}


@dataclass
class StateObjects:
    """One bucket's objects through a boto3 S3 client."""

    client: Any
    bucket: str
    kms_key: str | None = None

    def where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _encryption(self) -> dict[str, str]:
        if self.kms_key:
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key}
        return {"ServerSideEncryption": "AES256"}

    def get(self, key: str, if_none_match: str | None = None) -> tuple[bytes, str] | None:
        """(body, ETag), or None when there is no such object; NotModified on a 304."""
        extra = {"IfNoneMatch": if_none_match} if if_none_match else {}
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key, **extra)
            return answer["Body"].read(), answer["ETag"]
        except ClientError as exc:
            code = _code(exc)
            if code == "304":
                raise NotModified(key) from None
            if code in _ABSENT:
                return None
            raise self._failure("GetObject", key, exc) from exc
        except BotoCoreError as exc:
            raise StateUnreachable(f"{self.where(key)}: {exc}") from exc

    def exists(self, key: str) -> bool:
        """By listing, not HeadObject: without s3:ListBucket on the whole bucket, S3 answers a
        missing key with 403, not 404; the state policy grants listing under its keys only."""
        return key in self.keys(key)

    def put(
        self, key: str, body: bytes, if_match: str | None = None, if_none_match: str | None = None
    ) -> str:
        """Write `key`; its new ETag. PreconditionFailed (412) / ConditionalConflict (409)."""
        extra: dict[str, str] = self._encryption()
        if if_match:
            extra["IfMatch"] = if_match
        if if_none_match:
            extra["IfNoneMatch"] = if_none_match
        try:
            return self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)["ETag"]
        except ClientError as exc:
            raise self._failure("PutObject", key, exc) from exc
        except BotoCoreError as exc:
            raise StateUnreachable(f"{self.where(key)}: {exc}") from exc

    def delete(self, key: str, if_match: str | None = None) -> None:
        extra = {"IfMatch": if_match} if if_match else {}
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key, **extra)
        except ClientError as exc:
            if _code(exc) in _ABSENT:
                return
            raise self._failure("DeleteObject", key, exc) from exc
        except BotoCoreError as exc:
            raise StateUnreachable(f"{self.where(key)}: {exc}") from exc

    def keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            ):
                found.extend(item["Key"] for item in page.get("Contents", []))
        except ClientError as exc:
            raise self._failure("ListObjectsV2", prefix, exc) from exc
        except BotoCoreError as exc:
            raise StateUnreachable(f"{self.where(prefix)}: {exc}") from exc
        return sorted(found)

    def _failure(self, operation: str, key: str, exc: ClientError) -> Exception:
        code = _code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code == "PreconditionFailed" or status == 412:
            return PreconditionFailed(key)
        if code == "ConditionalRequestConflict" or status == 409:
            return ConditionalConflict(key)
        if status >= 500 or code in ("SlowDown", "InternalError", "ServiceUnavailable"):
            return StateUnreachable(f"{self.where(key)}: {code} on {operation}")
        message = exc.response.get("Error", {}).get("Message", "")
        return JournalError(f"{self.where(key)}: {operation} refused: {code} {message}".strip())


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
