"""A run kept in S3 (`--journal s3://bucket/prefix/name.toml`): its store, lock and client.

The state client is the target's (same credentials and endpoint: a moto server or the
embedded world holds the state bucket in a rehearsal), or `--state-profile`'s for a separate
state account. Everything else the workspace does is the same for a local and an S3 journal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from engine.aws.target import Connection, TargetSpec, connect
from engine.state.s3_bucket import account_block, check_state_bucket
from engine.state.s3_journal import S3JournalStore
from engine.state.s3_location import S3Location, is_s3_url, parse_s3_url
from engine.state.s3_lock import S3Lock
from engine.state.s3_objects import StateObjects


def s3_location_of(journal: Path | str | None) -> S3Location | None:
    if isinstance(journal, str) and is_s3_url(journal):
        return parse_s3_url(journal)
    return None


def state_connection(spec: TargetSpec, state_profile: str | None, region: str) -> Connection:
    """The connection state goes through (never the embedded world's: see world_state)."""
    if state_profile:
        session = boto3.Session(profile_name=state_profile, region_name=region)
        return Connection(session, region, read_timeout=None)
    return connect(spec, region)


@dataclass
class RemoteState:
    location: S3Location
    objects: StateObjects
    store: S3JournalStore
    # the state connection's clients: STS and S3 Control read the account's public access block
    clients: Callable[[str], Any] | None = field(default=None)

    @classmethod
    def open(
        cls,
        location: S3Location,
        client: Any,
        kms_key: str | None,
        cache: Path,
        clients: Callable[[str], Any] | None = None,
    ) -> Any:
        objects = StateObjects(client, location.bucket, kms_key)
        return cls(location, objects, S3JournalStore(location, objects, cache), clients)

    def use_client(self, client: Any, clients: Callable[[str], Any] | None = None) -> None:
        """The embedded world's client, once the world is up."""
        self.objects.client = client
        self.clients = clients

    def check_bucket(self) -> None:
        clients = self.clients
        account = (lambda: account_block(clients("sts"), clients("s3control"))) if clients else None
        check_state_bucket(self.objects.client, self.location.bucket, account)

    def lock(self, operation: str, take_over: bool) -> S3Lock:
        return S3Lock(self.objects, self.location, operation, take_over)
