"""The alert banner and the one-line status (gh-ost style)."""

from __future__ import annotations

from textual.widgets import Static

from engine.core.views import AlertView


class AlertBanner(Static):
    """Cannot be missed: a rollback trigger fired."""

    def show_alert(self, alert: AlertView) -> None:
        rollback = alert.rollback or "none defined"
        offer = (
            f"{rollback} ran automatically (no key needed)"
            if alert.auto_rollback
            else f"rollback {rollback}: b"
        )
        self.update(
            f"⚠ ALERT {alert.trigger}: {alert.message}\n"
            f"measured {alert.measured:g} > threshold {alert.threshold:g} · {offer} · x hides"
        )
        self.add_class("visible")

    def clear(self) -> None:
        self.remove_class("visible")

    @property
    def shown(self) -> bool:
        return self.has_class("visible")


class StatusLine(Static):
    pass
