"""What the run tells people (`[notify]`): one short line and a JSON body per event, with an
event id that names the event, not the attempt, so a notice sent once is never sent again
(a `runbook run` that stops at the same gate twice, a resumed rollback).

Notices: a wait at a gate or a manual step (with the commands that answer it), an alert, an
automatic rollback started or finished, a step failed (not one an alert already told), and the
run finished. Nothing in a notice is a secret: ids, titles, figures, commands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.core.events import Alert, Event, RollbackChanged, RunStopped, StepStarted
from engine.core.views import RunSnapshot
from engine.runbook.model import Runbook
from engine.state.journal import Journal

DETAIL_CHARS = 300


@dataclass(frozen=True)
class Notice:
    event_id: str
    kind: str  # wait | alert | rollback | failed | finished
    line: str
    body: dict[str, Any] = field(default_factory=dict)


def _clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"


def wait_commands(runbook: Runbook, snapshot: RunSnapshot, kind: str, node_id: str) -> list[str]:
    """The exact commands that answer a wait."""
    if kind == "step":
        step = snapshot.step(node_id)
        note = " --note WHY" if step.needs_acceptance else ""
        return [f"runbook ack {node_id} --by NAME{note}"]
    gate = snapshot.gate(node_id)
    spec = runbook.gate(node_id)
    out = []
    for item in gate.items:
        if item.kind == "manual" and not item.ok:
            allowed = next(i.approvers for i in spec.items if i.id == item.id)
            who = f"  # as one of {', '.join(allowed)}" if allowed else ""
            out.append(f"runbook tick {gate.id} {item.id} --by NAME{who}")
    out.append(f"runbook decide {gate.id} --go --by NAME")
    return out


@dataclass
class NoticeMaker:
    """Turns engine events into notices (in the engine's thread: it reads the journal)."""

    runbook: Runbook
    alerted: set[str] = field(default_factory=set)  # steps an alert stopped (told already)

    def base(self, journal: Journal, event_id: str, kind: str) -> dict[str, Any]:
        run = journal.run
        return {
            "event_id": event_id,
            "kind": kind,
            "runbook": run.runbook_id,
            "target": {"kind": run.target.kind, "identity": run.target.identity},
        }

    def notice(self, event: Event, journal: Journal, snapshot: RunSnapshot) -> Notice | None:
        title = self.runbook.runbook.id
        if isinstance(event, StepStarted):
            self.alerted.discard(event.step_id)  # a new attempt: its failure is news again
            return None
        if isinstance(event, Alert):
            if event.step_id:
                self.alerted.add(event.step_id)
            event_id = f"alert-{len(journal.alerts)}-{event.trigger_id}"
            body = self.base(journal, event_id, "alert") | {
                "trigger": event.trigger_id,
                "step": event.step_id,
                "measured": event.measured,
                "threshold": event.threshold,
                "rollback": event.proposed_rollback,
                "automatic_rollback": event.auto_rollback,
                "message": _clip(event.message),
            }
            line = f"[{title}] ALERT {event.trigger_id}: {event.measured:g} > {event.threshold:g}"
            return Notice(event_id, "alert", line, body)
        if isinstance(event, RollbackChanged):
            if not event.automatic or event.status == "interrupted":
                return None  # a person ran it (they know); an interrupted one resumes
            event_id = f"rollback-{event.record}-{event.rollback_id}-{event.status}"
            body = self.base(journal, event_id, "rollback") | {
                "rollback": event.rollback_id,
                "phase": event.phase,
                "status": event.status,
                "error": _clip(event.error) if event.error else None,
            }
            line = f"[{title}] automatic rollback {event.rollback_id} {event.status}"
            return Notice(event_id, "rollback", line, body)
        if isinstance(event, RunStopped):
            return self._stopped(event, journal, snapshot)
        return None

    def _stopped(self, event: RunStopped, journal: Journal, snapshot: RunSnapshot) -> Notice | None:
        title = self.runbook.runbook.id
        rollbacks = len(journal.rollbacks)
        if event.status == "waiting" and event.kind and event.node_id:
            attempts = journal.steps[event.node_id].attempts if event.kind == "step" else 0
            event_id = f"wait-{event.kind}-{event.node_id}-r{rollbacks}-a{attempts}"
            commands = wait_commands(self.runbook, snapshot, event.kind, event.node_id)
            body = self.base(journal, event_id, "wait") | {
                "at": {"kind": event.kind, "id": event.node_id},
                "why": _clip(event.message),
                "commands": commands,
            }
            line = f"[{title}] waiting at {event.kind} {event.node_id}: {_clip(event.message)}"
            return Notice(event_id, "wait", line[:200], body)
        if event.status == "failed" and event.failed_step:
            if event.failed_step in self.alerted:
                return None  # the alert said it, with its figures
            state = journal.steps.get(event.failed_step)
            attempts = state.attempts if state else 0
            event_id = f"failed-{event.failed_step}-a{attempts}-r{rollbacks}"
            body = self.base(journal, event_id, "failed") | {
                "step": event.failed_step,
                "error": _clip(event.message),
                "commands": ["runbook run", "runbook status"],
            }
            line = f"[{title}] step {event.failed_step} failed"
            return Notice(event_id, "failed", line, body)
        if event.finished and event.status == "done":
            body = self.base(journal, "finished", "finished") | {
                "steps": len(self.runbook.steps),
                "commands": ["runbook report"],
            }
            return Notice("finished", "finished", f"[{title}] the run finished", body)
        return None
