"""Which account the engine drives, and the boto3 clients for it.

Endpoints follow the AWS CLI: `--endpoint-url` sends every service there; without it, botocore's
own endpoint configuration applies (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>, a profile's
`endpoint_url` or its per-service `services` section), because no endpoint_url is passed to the
clients then. So DynamoDB can point at one emulator and everything else at another. A target
whose every service resolves away from AWS is a rehearsal (kind "endpoint"); the embedded world
always passes its loopback URL explicitly, so no configuration can send it anywhere else.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config

from engine.aws.complete_responses import complete_responses
from engine.aws.resource_errors import name_resources
from engine.aws.retries import interruptible_retries
from engine.state.journal import Target

DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
# the pool holds at least as many connections as a data step keeps writes in flight
MAX_POOL_CONNECTIONS = 64
# every service the actions and checks call (engine/aws/iam_policy.py covers each)
SERVICES = (
    "dynamodb",
    "application-autoscaling",
    "lambda",
    "logs",
    "cloudwatch",
    "apigateway",
    "ssm",
    "sts",
    "s3",
    "sns",  # notifications ([notify])
)
_AWS_HOSTS = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws", ".c2s.ic.gov", ".sc2s.sgov.gov")


def is_aws_endpoint(url: str) -> bool:
    host = urlparse(url).hostname or ""
    return any(host.endswith(suffix) for suffix in _AWS_HOSTS)


def is_local_endpoint(url: str) -> bool:
    """An endpoint on this machine or a private network (loopback, RFC 1918, link-local, ULA):
    an emulator, not AWS. A host name counts when every address it resolves to is local."""
    host = urlparse(url).hostname or ""
    if not host or is_aws_endpoint(url):
        return False
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        try:
            found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return False  # unresolvable: connecting reports it
        addresses = {ipaddress.ip_address(info[4][0].split("%")[0]) for info in found}
    return bool(addresses) and all(a.is_loopback or a.is_private for a in addresses)


def configured_endpoints(profile: str | None, region: str) -> dict[str, str]:
    """Each service's endpoint as botocore resolves it without an explicit endpoint_url (no
    request is made): environment, profile, else the AWS default."""
    session = boto3.Session(profile_name=profile, region_name=region, **DUMMY_CREDENTIALS)
    return {svc: session.client(svc).meta.endpoint_url for svc in SERVICES}


def describe_endpoints(endpoints: dict[str, str]) -> str:
    """'dynamodb=http://a, *=http://b' for the journal and messages (most common one as *)."""
    urls = list(endpoints.values())
    common = max(set(urls), key=urls.count)
    parts = [f"{svc}={url}" for svc, url in sorted(endpoints.items()) if url != common]
    return ", ".join([*parts, f"*={common}"])


_RETRIES = Config(
    retries={"max_attempts": 8, "mode": "adaptive"},
    connect_timeout=5,
    read_timeout=60,
    max_pool_connections=MAX_POOL_CONNECTIONS,
)
# robust: seconds, not minutes. Every call these services answer is a short control- or
# data-plane call (no long polls); a hung endpoint is abandoned and retried, never waited on.
_TIMEOUTS = {"dynamodb": (3, 10), "lambda": (3, 15), "sts": (3, 10)}  # (connect, read)
# a loopback moto server shares this machine's cores with the migration, and its Scan sorts the
# whole table for every page: a slow answer there is load, not a hung endpoint, and a retry
# only adds to the load (a 100k-item table timed out at 10 s)
LOOPBACK_READ_TIMEOUT = 120
# --read-timeout: a slow remote emulator may need longer; AWS answers in seconds
READ_TIMEOUT_RANGE = (1.0, 3600.0)


def client_config(service: str, read_timeout: float | None = None) -> Config:
    connect, read = _TIMEOUTS.get(service, (3, 15))
    if read_timeout is not None:
        read = read_timeout
    return _RETRIES.merge(
        Config(
            connect_timeout=connect,
            read_timeout=read,
            retries={"max_attempts": 5, "mode": "adaptive"},
        )
    )


class TargetError(Exception):
    """The target cannot be reached or is not the one the journal names."""


@dataclass(frozen=True)
class TargetSpec:
    """What the operator asked for on the command line."""

    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None
    read_timeout: float | None = None  # --read-timeout; None: by where the endpoints are

    @property
    def kind(self) -> str:
        if self.endpoint_url:
            return "endpoint"
        if self.profile or self.region:
            return "endpoint" if self.emulated() else "aws"
        return "embedded"

    def endpoints(self) -> dict[str, str]:
        """Service -> endpoint URL this target's clients use (no request is made)."""
        if self.endpoint_url:
            return dict.fromkeys(SERVICES, self.endpoint_url)
        return configured_endpoints(self.profile, self.region or "us-east-1")

    def client_read_timeout(self) -> float | None:
        """The operator's --read-timeout, else the loopback one for an emulator on this machine
        or a private network (it shares cores with the migration: a slow answer is load, not a
        hung endpoint), else None: each service's own, for AWS."""
        if self.read_timeout is not None:
            return self.read_timeout
        if self.kind == "endpoint" and all(map(is_local_endpoint, self.endpoints().values())):
            return LOOPBACK_READ_TIMEOUT
        return None

    def emulated(self) -> bool:
        """Without --endpoint-url: every service configured away from AWS (emulators)."""
        cached = self.__dict__.get("_emulated")
        if cached is None:
            try:
                found = configured_endpoints(self.profile, self.region or "us-east-1")
                cached = not any(is_aws_endpoint(url) for url in found.values())
            except Exception:  # an unknown profile is reported when connecting
                cached = False
            object.__setattr__(self, "_emulated", cached)  # resolved once per spec
        return cached

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
    read_timeout: float | None = None  # None: each service's own (see _TIMEOUTS)
    _clients: dict[str, Any] = field(default_factory=dict)
    # the retry backoff of every client waits on this (the engine's stop, see stop_retries_on)
    _stop: threading.Event = field(default_factory=threading.Event)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            client = self.session.client(
                service,
                endpoint_url=self.endpoint_url,
                config=client_config(service, self.read_timeout),
            )
            interruptible_retries(client, lambda: self._stop)
            complete_responses(client)  # robust: an answer cut short is an error, never empty
            self._clients[service] = name_resources(client)  # robust: errors name the resource
        return self._clients[service]

    def stop_retries_on(self, stop: threading.Event) -> None:
        """A set `stop` ends any retry backoff at once (Interrupted), for clients made
        before or after this call."""
        self._stop = stop

    @property
    def region_name(self) -> str:
        return self.region

    def resource(self, service: str) -> Any:
        return self.session.resource(
            service,
            endpoint_url=self.endpoint_url,
            config=client_config(service, self.read_timeout),
        )


def local_connection(endpoint_url: str, region: str) -> Connection:
    """A loopback moto server: dummy credentials, never the operator's real ones."""
    session = boto3.Session(region_name=region, **DUMMY_CREDENTIALS)
    return Connection(session, region, endpoint_url, read_timeout=LOOPBACK_READ_TIMEOUT)


def connect(spec: TargetSpec, default_region: str) -> Connection:
    """Connection for --endpoint-url or --profile/--region (the embedded target is separate)."""
    region = spec.region or default_region
    if spec.kind == "endpoint":
        session = boto3.Session(profile_name=spec.profile, region_name=region)
        if session.get_credentials() is None:
            session = boto3.Session(
                profile_name=spec.profile, region_name=region, **DUMMY_CREDENTIALS
            )
        # endpoint_url None: botocore's endpoint configuration (env, profile) applies
        return Connection(session, region, spec.endpoint_url, spec.client_read_timeout())
    session = boto3.Session(profile_name=spec.profile, region_name=region)
    return Connection(session, region, read_timeout=spec.client_read_timeout())


def identify(spec: TargetSpec, conn: Connection, embedded_world: str | None = None) -> Target:
    if spec.kind == "embedded":
        return Target(
            kind="embedded",
            identity=embedded_world or "?",
            region=conn.region,
            endpoint_url=conn.endpoint_url,
        )
    if spec.kind == "endpoint":
        identity = spec.endpoint_url or describe_endpoints(spec.endpoints())
        return Target(
            kind="endpoint",
            identity=identity,
            region=conn.region,
            endpoint_url=spec.endpoint_url,
            profile=spec.profile,
        )
    try:
        account = conn.client("sts").get_caller_identity()["Account"]
    except Exception as exc:
        raise TargetError(f"cannot identify the AWS account: {exc}") from exc
    return Target(kind="aws", identity=account, region=conn.region, profile=spec.profile)
