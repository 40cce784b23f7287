"""The world a run acts on, as far as actions and checks need to know: on a real account
nothing is simulated (`RealAccount`, a do-nothing hook, as Terraform's NilHook); a rehearsal
plugs its own in (engine/rehearsal/world.py). Actions never ask which one they have."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from engine.runbook.model import Runbook


class World(Protocol):
    # moto has no percentile statistics: a rehearsal on it reads averages instead
    percentiles: bool

    def tick(self, clients: Callable[[str], Any], runbook: Runbook, plan_seconds: float) -> None:
        """Plan time passed: a simulated world publishes that much traffic (real traffic
        never stops on its own)."""

    def placeholder_code(self) -> bytes | None:
        """A stub handler for a function whose code could not be archived, or None where a
        placeholder is never acceptable (a real account)."""

    def bridge_export(self, s3: Any, export: dict[str, Any], bucket: str, reader_key: str) -> int:
        """Make a completed DynamoDB export readable by the copy's ItemReader (a JSON array of
        `{"Item": ...}` at `reader_key`); returns the items. A rehearsal does it here."""


class BridgeMissing(RuntimeError):
    """The export cannot be handed to the state machine on this target (yet)."""


class RealAccount:
    """A real AWS account: nothing is simulated, nothing stands in."""

    percentiles = True

    def tick(self, clients: Callable[[str], Any], runbook: Runbook, plan_seconds: float) -> None:
        return None

    def placeholder_code(self) -> bytes | None:
        return None

    def bridge_export(self, s3: Any, export: dict[str, Any], bucket: str, reader_key: str) -> int:
        raise BridgeMissing(
            "the step-functions backend is rehearsed only: on a real account the export's "
            "gzipped JSON lines need an AWS-side bridge to the reader's input, not built yet "
            "(docs/step-functions.md); use the local backend"
        )


REAL_ACCOUNT = RealAccount()
