"""An S3 journal's URL, the keys beside it, a lock's age and what makes a bucket public: pure."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.state.s3_bucket import public_reasons
from engine.state.s3_location import holder_age, is_s3_url, parse_s3_url


def test_url_names_the_journal_and_its_neighbours() -> None:
    loc = parse_s3_url("s3://state-bucket/runs/acme/migration.toml")
    assert (loc.bucket, loc.prefix, loc.name, loc.stem) == (
        "state-bucket", "runs/acme/", "migration.toml", "migration"
    )  # fmt: skip
    assert loc.key == "runs/acme/migration.toml"
    assert loc.lock_key == "runs/acme/migration.toml.lock"
    assert loc.log_part(3) == "runs/acme/migration.log.d/00000003"
    assert loc.artifacts_prefix == "runs/acme/migration.artifacts/"
    assert loc.url == "s3://state-bucket/runs/acme/migration.toml"
    assert loc.cache_path(Path("/home/x/.local/state/rc")) == Path(
        "/home/x/.local/state/rc/s3/state-bucket/runs/acme/migration.toml"
    )
    top = parse_s3_url("s3://state-bucket/run.toml")
    assert (top.prefix, top.key) == ("", "run.toml")


@pytest.mark.parametrize(
    "url",
    [
        "s3:/state-bucket/run.toml",
        "s3://Bad_Bucket/run.toml",
        "s3://state-bucket/",
        "s3://state-bucket/run.json",
        "s3://state-bucket/a//run.toml",
        "s3://state-bucket/../run.toml",
        "s3://state-bucket/a b/run.toml",
        "s3://state-bucket/.toml",
    ],
)
def test_a_bad_url_is_one_line(url: str) -> None:
    assert is_s3_url(url)
    with pytest.raises(ValueError) as info:
        parse_s3_url(url)
    assert "\n" not in str(info.value) and url in str(info.value)


def test_a_path_is_not_an_s3_url() -> None:
    assert not is_s3_url("/tmp/run.toml") and not is_s3_url("runs/s3.toml")


def test_holder_age() -> None:
    now = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
    assert holder_age("2026-12-06T11:59:30Z", now) == "0m 30s"
    assert holder_age("2026-12-06T09:15:00Z", now) == "2h 45m"
    assert holder_age("2026-12-04T10:00:00Z", now) == "2d 2h"
    assert holder_age("?", now) == "?"


ALL_USERS = {"Grantee": {"URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
             "Permission": "READ"}  # fmt: skip
OWNER = {"Grantee": {"ID": "abc", "Type": "CanonicalUser"}, "Permission": "FULL_CONTROL"}


def test_what_makes_a_bucket_public() -> None:
    assert public_reasons(False, [OWNER], {}) == []
    assert public_reasons(True, [OWNER], {}) == ["its bucket policy is public"]
    assert public_reasons(True, [OWNER], {"RestrictPublicBuckets": True}) == []
    assert public_reasons(False, [OWNER, ALL_USERS], {}) == ["its ACL grants READ to everyone"]
    assert public_reasons(False, [ALL_USERS], {"IgnorePublicAcls": True}) == []
