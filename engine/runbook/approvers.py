"""Who may approve: the identity patterns a gate item's `approvers` lists, parsed here only.

Two kinds, both matched against a *verified* identity's principal (engine/state/identity.py):
- an IAM role ARN, `arn:aws:iam::123456789012:role/path/Name` (`*` wildcards in the account
  and the role's name); an assumed-role session is reduced to its role before it is matched;
- an OS user, `os:alice` (`*` allowed): what a rehearsal can verify (the engine's own uid, or
  a control-socket peer's SO_PEERCRED uid), and the rehearsal-only `--as` names.
"""

from __future__ import annotations

import fnmatch
import re

_ROLE = re.compile(r"^arn:aws(-cn|-us-gov)?:iam::(\d{12}|\*):role/[A-Za-z0-9+=,.@_/*-]{1,512}$")
_OS = re.compile(r"^os:[A-Za-z0-9*_][A-Za-z0-9*_.@-]{0,63}$")


def pattern_problem(pattern: str) -> str | None:
    """Why a pattern is not one of the two kinds (None: it is)."""
    if _ROLE.match(pattern) or _OS.match(pattern):
        return None
    if pattern.startswith("arn:") and ":assumed-role/" in pattern:
        return f"{pattern!r}: name the role (arn:aws:iam::ACCOUNT:role/NAME), not a session"
    return (
        f"{pattern!r} is neither a role ARN (arn:aws:iam::ACCOUNT:role/NAME) "
        "nor an OS user (os:NAME); `*` is the only wildcard"
    )


def matches(pattern: str, principal: str) -> bool:
    """Whether a verified principal (a role ARN, or os:NAME) is one the pattern names."""
    # `*` is the only wildcard: fnmatch's `?` and `[...]` are escaped
    escaped = "".join("[?]" if c == "?" else "[[]" if c == "[" else c for c in pattern)
    return fnmatch.fnmatchcase(principal, escaped)


def any_match(patterns: list[str], principal: str) -> bool:
    return any(matches(p, principal) for p in patterns)
