"""The read-only console's source: it re-reads the driving process's journal; items/s and ETA
come from its checkpoints."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from engine.core.context import RateMeter, eta_seconds
from engine.core.views import RunSnapshot
from engine.run.engine import Engine
from engine.state.lock import Holder, is_locked

if TYPE_CHECKING:
    from textual.clock import Clock


class Follower:
    """Read-only: re-reads the driver's journal; items/s and ETA come from its checkpoints."""

    def __init__(
        self,
        engine: Engine,
        reload: Callable[[Engine], None] | None,
        holder: Holder | None,
        clock: Clock | None,
        who_drives: Callable[[], Holder | None] | None = None,
    ) -> None:
        """`who_drives`: who holds the run's lock now (for a journal in S3, the lock object
        there); by default the lock file beside the local journal."""
        self.engine = engine
        self.reload = reload
        self.holder = holder
        self.clock = clock
        self.who_drives = who_drives or (lambda: is_locked(engine.store.path))
        self.meters: dict[tuple[str, str], RateMeter] = {}

    def snapshot(self) -> RunSnapshot:
        journal = self.engine.journal
        running = [sid for sid, s in journal.steps.items() if s.status == "running"]
        rates: dict[tuple[str, str], tuple[float | None, float | None]] = {}
        for step_id in running:
            for table, prog in journal.steps[step_id].progress.items():
                meter = self.meters.setdefault((step_id, table), RateMeter())
                now = self.clock.time if self.clock else time.monotonic()
                rate = meter.add(now, prog.done)
                rates[(step_id, table)] = (rate, eta_seconds(prog.done, prog.total, rate))
        driver = f"{self.holder.user}@{self.holder.host}" if self.holder else None
        return self.engine.snapshot(
            driver=driver, active=self.holder is not None and bool(running), rates=rates
        )

    def follow(self) -> RunSnapshot:
        """Raises what re-reading raises (a journal mid-replace): the caller keeps its view.
        Without `reload` the view is frozen (tests): the holder given stays."""
        if self.reload is not None:
            self.reload(self.engine)
            self.holder = self.who_drives()  # the driver may have left, or another came
        return self.snapshot()
