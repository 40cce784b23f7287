"""Who acted, as the engine verified it (journaled beside the `--by` display name).

- `os_user`: from the kernel, always: the engine's own uid for a command in its process, or
  the control socket peer's uid (SO_PEERCRED) for a detached engine.
- `arn`: the STS caller ARN of the credentials used (an assumed-role session reduced to its
  role); None where nothing verified one (a request without its STS proof).
- `rehearsal_as`: a rehearsal-only stand-in (`--as NAME`), offered so that one person can
  rehearse a gate that needs two approvers; it is NOT verified, and says so wherever shown.
- `principal`: what approver patterns and distinct-approval counts use: the role ARN on a real
  account, `os:NAME` on a rehearsal (NAME = rehearsal_as, else the OS user).
"""

from __future__ import annotations

import re

from pydantic import BaseModel

_ASSUMED = re.compile(r"^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([^/]+)/.+$")


def reduce_arn(arn: str) -> str:
    """An assumed-role session ARN as its role's ARN (sessions differ per login; roles don't).
    IAM's ARN drops the role's path, which STS does not report: `role/NAME`."""
    match = _ASSUMED.match(arn)
    if match is None:
        return arn
    partition, account, role = match.groups()
    return f"arn:{partition}:iam::{account}:role/{role}"


class Identity(BaseModel):
    os_user: str
    uid: int | None = None
    arn: str | None = None
    rehearsal_as: str | None = None
    principal: str
    via: str = "process"  # process (this process's uid) | socket (the peer's SO_PEERCRED)

    def text(self) -> str:
        """One line for a screen: what was verified, and what was only offered."""
        parts = [f"os:{self.os_user}"]
        if self.via == "socket":
            parts[0] += " (socket peer)"
        parts.append(self.arn or "no AWS identity verified")
        if self.rehearsal_as:
            parts.append(f"as {self.rehearsal_as} (rehearsal, not verified)")
        return ", ".join(parts)
