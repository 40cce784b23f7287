"""Which account the engine drives, and the boto3 clients for it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from engine.journal import Target

DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
# the pool holds at least as many connections as a data step keeps writes in flight
MAX_POOL_CONNECTIONS = 64
_RETRIES = Config(
    retries={"max_attempts": 8, "mode": "adaptive"},
    connect_timeout=5,
    read_timeout=60,
    max_pool_connections=MAX_POOL_CONNECTIONS,
)


class TargetError(Exception):
    """The target cannot be reached or is not the one the journal names."""


@dataclass(frozen=True)
class TargetSpec:
    """What the operator asked for on the command line."""

    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None

    @property
    def kind(self) -> str:
        if self.endpoint_url:
            return "endpoint"
        if self.profile or self.region:
            return "aws"
        return "embedded"

    def slug(self) -> str:
        if self.kind == "embedded":
            return "embedded"
        raw = self.endpoint_url or f"{self.profile or 'default'}-{self.region or 'default'}"
        return re.sub(r"[^A-Za-z0-9.-]+", "_", raw.split("://")[-1]).strip("_")


@dataclass
class Connection:
    """A boto3 session plus endpoint; clients are created once per service."""

    session: Any
    region: str
    endpoint_url: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service, endpoint_url=self.endpoint_url, config=_RETRIES
            )
        return self._clients[service]

    @property
    def region_name(self) -> str:
        return self.region

    def resource(self, service: str) -> Any:
        return self.session.resource(service, endpoint_url=self.endpoint_url, config=_RETRIES)


def local_connection(endpoint_url: str, region: str) -> Connection:
    """A loopback moto server: dummy credentials, never the operator's real ones."""
    session = boto3.Session(region_name=region, **DUMMY_CREDENTIALS)
    return Connection(session, region, endpoint_url)


def connect(spec: TargetSpec, default_region: str) -> Connection:
    """Connection for --endpoint-url or --profile/--region (the embedded target is separate)."""
    region = spec.region or default_region
    if spec.kind == "endpoint":
        session = boto3.Session(profile_name=spec.profile, region_name=region)
        if session.get_credentials() is None:
            session = boto3.Session(region_name=region, **DUMMY_CREDENTIALS)
        return Connection(session, region, spec.endpoint_url)
    session = boto3.Session(profile_name=spec.profile, region_name=region)
    return Connection(session, region)


def identify(spec: TargetSpec, conn: Connection, embedded_world: str | None = None) -> Target:
    if spec.kind == "embedded":
        return Target(
            kind="embedded",
            identity=embedded_world or "?",
            region=conn.region,
            endpoint_url=conn.endpoint_url,
        )
    if spec.kind == "endpoint":
        return Target(
            kind="endpoint",
            identity=spec.endpoint_url or "",
            region=conn.region,
            endpoint_url=spec.endpoint_url,
            profile=spec.profile,
        )
    try:
        account = conn.client("sts").get_caller_identity()["Account"]
    except Exception as exc:
        raise TargetError(f"cannot identify the AWS account: {exc}") from exc
    return Target(kind="aws", identity=account, region=conn.region, profile=spec.profile)
