"""The control protocol's framing: newline-delimited JSON, one object per line.

Request:  one of the request models of engine/control/requests.py, e.g.
          {"cmd": "pause", "by": "alice"}
Response: {"ok": true, "answer": ...}         (the request's `answer` type, as JSON)
          {"ok": false, "refusal": {"kind": "refused"|"bad_request"|"not_allowed",
                                    "message": "..."}}
`subscribe` answers {"ok": true, ...} and then streams messages {"type": ..., "data": ...}:
  snapshot  the run as it stands (`RunSnapshot.model_dump_json()`, what `status --json`
            prints), after every save
  progress  {step, table, done, total, rate, eta, in_flight, capacity, at} (coalesced: <= 4/s per
            watcher)
  log       {step, level, message, at}
  control   the engine's own state (`ControlState`): pid, activity, paused/held, throttle
  end       {outcome, message}: the engine is about to exit
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import BaseModel

from engine.core.commands import ControlState, Refusal
from engine.core.events import LogLine, Progress
from engine.core.outcome import BadRequest
from engine.core.views import RunSnapshot

MAX_LINE = 64 * 1024  # a request is small; a longer line is refused, never buffered forever


class ProtocolError(Exception):
    """A line that is not a message of this protocol."""


class Response(BaseModel):
    ok: bool
    answer: Any = None
    refusal: Refusal | None = None

    def result(self) -> Any:
        """The answer, or the refusal raised as the exception the engine raised."""
        if self.ok:
            return self.answer
        raise self.refusal.error() if self.refusal else BadRequest("refused, without a reason")


def encode(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, default=str, separators=(",", ":")) + "\n").encode()


def encode_model(model: BaseModel) -> bytes:
    return (model.model_dump_json(exclude_none=False) + "\n").encode()


def decode(line: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("a message is a JSON object")
    return obj


def answered(answer: Any) -> bytes:
    """`answer` is JSON-ready already (the request's answer type dumped it)."""
    return encode_model(Response(ok=True, answer=answer))


def refused(refusal: Refusal) -> bytes:
    return encode_model(Response(ok=False, refusal=refusal))


def frame(kind: str, data_json: str) -> bytes:
    """A watcher message whose data is JSON already (a model serialises itself)."""
    return f'{{"type":{json.dumps(kind)},"data":{data_json}}}\n'.encode()


def message(kind: str, data: Any) -> bytes:
    return frame(kind, json.dumps(data, default=str, separators=(",", ":")))


def control_message(state: ControlState) -> bytes:
    return frame("control", state.model_dump_json())


def snapshot_message(snapshot: RunSnapshot) -> bytes:
    return frame("snapshot", snapshot.model_dump_json())


def progress_message(event: Progress) -> bytes:
    return message(
        "progress",
        {
            "step": event.step_id,
            "table": event.table,
            "done": event.done,
            "total": event.total,
            "rate": event.rate,
            "eta": event.eta_seconds,
            "in_flight": list(event.in_flight) if event.in_flight else None,
            "capacity": event.capacity,  # consumed units/s against the budget
            "at": time.time(),  # when the engine announced it (watchers measure their lag)
        },
    )


def log_message(line: LogLine) -> bytes:
    return message(
        "log", {"step": line.step_id, "level": line.level, "message": line.message, "at": line.at}
    )
