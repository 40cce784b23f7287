"""The control protocol: newline-delimited JSON, one object per line (docs/architecture.md).

Request:  {"cmd": "pause", "by": "alice", ...arguments}
Response: {"ok": true, "message": "...", "data": {...}}
          {"ok": false, "code": 1|2|4, "error": "..."}   (code: the CLI's exit code)
`subscribe` answers {"ok": true, ...} and then streams messages {"type": ..., "data": ...}:
  snapshot  the run as it stands (`RunSnapshot.model_dump_json()`, what `status --json`
            prints), after every save
  progress  {step, table, done, total, rate, eta, in_flight, capacity, at} (coalesced: <= 4/s per
            watcher)
  log       {step, level, message, at}
  control   the engine's own state: pid, activity, paused/held, throttle
  end       {outcome, message}: the engine is about to exit
"""

from __future__ import annotations

import json
import time
from typing import Any

from engine.core.events import LogLine, Progress

MAX_LINE = 64 * 1024  # a request is small; a longer line is refused, never buffered forever

COMMANDS = (
    "ping",
    "status",
    "pause",
    "resume",
    "stop",
    "throttle",
    "tick",
    "untick",
    "evaluate",
    "clock",
    "ack",
    "decide",
    "preview_rollback",
    "rollback",
    "subscribe",
)

CODE_OK, CODE_FAILED, CODE_BAD_REQUEST, CODE_REFUSED_PEER = 0, 1, 2, 4


class ProtocolError(Exception):
    """A line that is not a request of this protocol."""


def encode(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, default=str, separators=(",", ":")) + "\n").encode()


def decode(line: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("a message is a JSON object")
    return obj


def ok(message: str = "", **data: Any) -> dict[str, Any]:
    return {"ok": True, "message": message, "data": data}


def failed(code: int, error: str) -> dict[str, Any]:
    return {"ok": False, "code": code, "error": error}


def frame(kind: str, data_json: str) -> bytes:
    """A watcher message whose data is JSON already (a snapshot serialises itself)."""
    return f'{{"type":{json.dumps(kind)},"data":{data_json}}}\n'.encode()


def message(kind: str, data: Any) -> bytes:
    return frame(kind, json.dumps(data, default=str, separators=(",", ":")))


def state_message(engine: Any) -> bytes:
    """The run as it stands, for watchers: the engine's immutable RunSnapshot."""
    return snapshot_message(engine.snapshot())


def snapshot_message(snapshot: Any) -> bytes:
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
