"""Approver patterns (issue 24): two kinds, `*` the only wildcard; and the reduction of an
assumed-role session to the role it names, so two logins of one role are one approver."""

from __future__ import annotations

import pytest

from engine.runbook.approvers import matches, pattern_problem
from engine.state.identity import reduce_arn

ROLE = "arn:aws:iam::123456789012:role/MigrationApprover"


@pytest.mark.parametrize(
    "pattern",
    [ROLE, "arn:aws:iam::*:role/ops/*", "arn:aws-us-gov:iam::123456789012:role/X", "os:alice"],
)
def test_role_arns_and_os_users_are_patterns(pattern: str) -> None:
    assert pattern_problem(pattern) is None


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("arn:aws:iam::123456789012:user/bob", "neither a role ARN"),
        ("arn:aws:sts::123456789012:assumed-role/Ops/bob", "not a session"),
        ("arn:aws:iam::12345:role/X", "neither a role ARN"),
        ("alice", "nor an OS user"),
        ("os:", "nor an OS user"),
        ("os:a b", "nor an OS user"),
    ],
)
def test_anything_else_is_refused_saying_what_would_do(pattern: str, says: str) -> None:
    problem = pattern_problem(pattern)
    assert problem is not None and says in problem


def test_star_is_the_only_wildcard() -> None:
    assert matches("arn:aws:iam::*:role/ops/*", "arn:aws:iam::123456789012:role/ops/Deployer")
    assert not matches("arn:aws:iam::*:role/ops/*", "arn:aws:iam::123456789012:role/Ops")
    assert matches("os:qa-*", "os:qa-lead") and not matches("os:qa-*", "os:alice")
    assert not matches("os:a?c", "os:abc")  # `?` is a character, not a wildcard


def test_an_assumed_role_session_is_its_role() -> None:
    session = "arn:aws:sts::123456789012:assumed-role/MigrationApprover/alice@example.com"
    assert reduce_arn(session) == ROLE
    for arn in ("arn:aws:iam::123456789012:user/bob", "arn:aws:sts::123456789012:user/moto"):
        assert reduce_arn(arn) == arn
