"""A Lambda function's environment as GetFunction(Configuration) returns it, read whole or not at
all. With a customer KMS key (KMSKeyArn), a caller without kms:Decrypt on it gets
`Environment.Error` and no `Variables`: a merge of nothing written back would leave only the
flags (every other variable wiped), and an archive of it would keep nothing."""

from __future__ import annotations

from typing import Any


class EnvironmentSealed(RuntimeError):
    """A function's environment cannot be read whole, so no flag may be written to it."""


def sealed_environment(conf: dict[str, Any]) -> str | None:
    """Why `conf`'s environment must not be written or archived without a human, or None.

    With a customer KMS key (KMSKeyArn), a caller without kms:Decrypt on it gets
    `Environment.Error` and no `Variables`: writing a merge of nothing would leave only the
    flags (every other variable wiped), and archiving it would keep nothing."""
    error = (conf.get("Environment") or {}).get("Error") or {}
    if error:
        key = conf.get("KMSKeyArn") or "its KMS key"
        return (
            f"its environment cannot be read ({error.get('ErrorCode', 'error')}: "
            f"{error.get('Message', '')}); grant kms:Decrypt on {key} to the runbook's role"
        )
    if conf.get("KMSKeyArn"):
        return f"its environment is encrypted with the customer key {conf['KMSKeyArn']}"
    return None


def read_environment(conf: dict[str, Any], fn: str) -> dict[str, str]:
    """The variables of a GetFunctionConfiguration answer; EnvironmentSealed when they could
    not be read (Environment.Error), never an empty environment in their place."""
    env = conf.get("Environment") or {}
    if env.get("Error"):
        raise EnvironmentSealed(
            f"{fn}: {sealed_environment(conf)}; nothing written (a flags-only environment "
            "would wipe every other variable)"
        )
    return dict(env.get("Variables") or {})
