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

    def bridge_export(
        self, s3: Any, export: dict[str, Any], bucket: str, reader_prefix: str
    ) -> int | None:
        """Convert a completed export's data files to the reader's input under `reader_prefix`
        (one JSON array per data file, `export_reader.reader_key_for`) here and return the
        items (a rehearsal: moto runs no Lambda code), or None where AWS converts them itself
        in the state machine (the bridge function, a real account)."""


class RealAccount:
    """A real AWS account: nothing is simulated, nothing stands in."""

    percentiles = True

    def tick(self, clients: Callable[[str], Any], runbook: Runbook, plan_seconds: float) -> None:
        return None

    def placeholder_code(self) -> bytes | None:
        return None

    def bridge_export(
        self, s3: Any, export: dict[str, Any], bucket: str, reader_prefix: str
    ) -> int | None:
        return None  # the bridge function converts each data file in the state machine


REAL_ACCOUNT = RealAccount()
