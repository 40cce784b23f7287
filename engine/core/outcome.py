"""What an engine command returns (`Outcome`) or refuses with (`CommandRefused`, `BadRequest`,
`NotAllowed`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic.dataclasses import dataclass

from engine.core.views import NodeRef

# (what: a step id or rollback title, token the operator must type: the phase id) -> consent;
# None: asked, not answered yet (a detached engine waiting for an attached console)
Confirm = Callable[[str, str], bool | None]


class CommandRefused(Exception):
    """A command the engine will not carry out as asked (exit 1). (Not to be confused with an
    action's own refusal to delete, which fails its step.)"""


class BadRequest(Exception):
    """A command that names something that does not exist, or is malformed (exit 2)."""


class NotAllowed(Exception):
    """A caller the engine does not serve: another user on its control socket (exit 4)."""


@dataclass
class Outcome:
    """How a run or a rollback ended (a pydantic dataclass: it crosses the control socket)."""

    # paused: stopped short of a destructive step that was not approved beforehand
    status: Literal["done", "waiting", "failed", "interrupted", "declined", "paused"]
    waiting: NodeRef | None = None
    failed_step: str | None = None
    message: str = ""
