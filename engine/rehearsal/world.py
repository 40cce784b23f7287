"""The rehearsal's side of the `World` seam (engine/core/world.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.core.world import RealAccount
from engine.rehearsal import simulator
from engine.rehearsal.export_bridge import bridge_export
from engine.rehearsal.seed_lambda import handler_zip
from engine.runbook.model import Runbook


class StandIn(RealAccount):
    """A target that stands in for AWS (--endpoint-url: a moto server, dynalite): nothing is
    simulated, and a function whose code was not archived is restored with a stub handler."""

    def placeholder_code(self) -> bytes | None:
        return handler_zip()

    def bridge_export(
        self, s3: Any, export: dict[str, Any], bucket: str, reader_prefix: str
    ) -> int | None:
        """Here, on this machine, with the bridge function's own code: a stock moto runs no
        Lambda code (engine/rehearsal/export_bridge.py)."""
        return bridge_export(s3, export, bucket, reader_prefix)


class Embedded(StandIn):
    """The embedded moto world: simulated traffic as plan time passes, averages for latency."""

    percentiles = False

    def tick(self, clients: Callable[[str], Any], runbook: Runbook, plan_seconds: float) -> None:
        simulator.publish_tick(clients, runbook, plan_seconds)

    def bridge_export(
        self, s3: Any, export: dict[str, Any], bucket: str, reader_prefix: str
    ) -> int | None:
        """As on a real account: the bridge function converts each data file in the state
        machine; the embedded moto runs its handler (engine/rehearsal/moto_lambda.py)."""
        return None


EMBEDDED = Embedded()
STAND_IN = StandIn()
