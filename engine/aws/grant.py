"""One statement of an IAM policy the engine writes (`runbook iam-policy` and its parts), and
the ARNs of tables as IAM names them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Grant:
    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: dict[str, Any] | None = None

    def statement(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Sid": self.sid,
            "Effect": "Allow",
            "Action": sorted(set(self.actions)),
            "Resource": sorted(set(self.resources)) if self.resources != ("*",) else "*",
        }
        if self.condition:
            out["Condition"] = self.condition
        return out


def table_arns(region: str, account: str, names: list[str]) -> list[str]:
    """A table and what IAM names under it: /index/..., /backup/..., /stream/..."""
    out = []
    for name in names:
        base = f"arn:aws:dynamodb:{region}:{account}:table/{name}"
        out += [base, f"{base}/*"]  # /index/..., /backup/..., /stream/...
    return out
