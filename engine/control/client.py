"""The client side of the control socket.

`RemoteEngine` offers the engine's commands (pause, resume, stop, throttle, tick, ack, decide,
rollback, status) and `subscribe(callback)`, so a console can drive a detached engine the way
it drives a local one. Errors come back as `RemoteError` with the CLI's exit code.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.control import protocol
from engine.core.events import Event, LogLine, Progress, SnapshotChanged, Subscriber
from engine.core.views import RunSnapshot

CONNECT_TIMEOUT = 5.0
ANSWER_TIMEOUT = 30.0  # a decide evaluates the gate's checks against the target: allow for it


class RemoteError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class EngineGone(Exception):
    """Nobody listens on the socket (the engine exited, or died and left its socket)."""


@dataclass(frozen=True)
class WatchMessage:
    type: str  # status | progress | log | control | end (snapshot, once it lands)
    data: Any


def _connect(path: Path, timeout: float | None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(CONNECT_TIMEOUT)
    try:
        sock.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        sock.close()
        raise EngineGone(str(exc)) from None
    except OSError:
        sock.close()
        raise
    sock.settimeout(timeout)
    return sock


class RemoteEngine:
    def __init__(self, path: Path) -> None:
        self.path = path

    # ---- one request, one response ---------------------------------------------------------

    def request(self, cmd: str, **args: Any) -> dict[str, Any]:
        """Send one request; the response's `data` (with `message`), or RemoteError."""
        # a rollback answers when it is done: no read timeout; the rest answer at once
        timeout = None if cmd == "rollback" else ANSWER_TIMEOUT
        with _connect(self.path, timeout) as sock:
            sock.sendall(protocol.encode({"cmd": cmd, **args}))
            line = sock.makefile("rb").readline(protocol.MAX_LINE * 64)
        if not line:
            raise EngineGone("the engine closed the connection without answering")
        response = protocol.decode(line)
        if not response.get("ok"):
            raise RemoteError(int(response.get("code", 2)), str(response.get("error", "")))
        return {**response.get("data", {}), "message": response.get("message", "")}

    def ping(self) -> int:
        return int(self.request("ping")["pid"])

    def status(self) -> dict[str, Any]:
        return self.request("status")

    def pause(self, by: str) -> str:
        return self.request("pause", by=by)["message"]

    def resume(self, by: str, consent: bool = False, approve: str | None = None) -> str:
        """`consent`: every destructive step from now on; `approve`: only that one step."""
        args: dict[str, Any] = {"consent": consent}
        if approve is not None:
            args["approve"] = approve
        return self.request("resume", by=by, **args)["message"]

    def stop(self, by: str) -> str:
        return self.request("stop", by=by)["message"]

    def throttle(self, by: str, **settings: float | int | None) -> str:
        """`rate` (items/s), `in_flight`, `segments`; None: no limit / the runbook's value."""
        return self.request("throttle", by=by, **settings)["message"]

    def tick(self, gate_id: str, item_id: str, by: str, note: str = "") -> None:
        self.request("tick", gate=gate_id, item=item_id, by=by, note=note)

    def untick(self, gate_id: str, item_id: str, by: str) -> None:
        self.request("untick", gate=gate_id, item=item_id, by=by)

    def evaluate_gate(self, gate_id: str) -> None:
        """The gate's automatic items measured now; the evidence comes in the next snapshot."""
        self.request("evaluate", gate=gate_id)

    def set_time_scale(self, scale: float, by: str) -> None:
        self.request("clock", scale=scale, by=by)

    def ack(self, step_id: str, by: str, note: str = "") -> None:
        self.request("ack", step=step_id, by=by, note=note)

    def decide(
        self, gate_id: str, go: bool, by: str, note: str = "", override: str | None = None
    ) -> dict[str, dict[str, Any]]:
        return self.request("decide", gate=gate_id, go=go, by=by, note=note, override=override)[
            "evidence"
        ]

    def preview_rollback(self, phase_id: str) -> list[dict[str, Any]]:
        return self.request("preview_rollback", phase=phase_id)["steps"]

    def rollback(self, phase_id: str, by: str) -> tuple[str, str]:
        """(outcome status, message); the caller asked for consent already."""
        data = self.request("rollback", phase=phase_id, by=by)
        return data["outcome"], data["message"]

    # ---- watching --------------------------------------------------------------------------

    def subscribe_events(self, subscriber: Subscriber) -> Subscription:
        """Like Engine.subscribe: `subscriber` gets SnapshotChanged, Progress and LogLine."""

        def deliver(msg: WatchMessage) -> None:
            if (event := as_event(msg)) is not None:
                subscriber(event)

        return self.subscribe(deliver)

    def subscribe(self, callback: Callable[[WatchMessage], None]) -> Subscription:
        """Call `callback` (in a reader thread) with every message until the engine ends or
        `Subscription.close()`."""
        sock = _connect(self.path, None)
        sock.sendall(protocol.encode({"cmd": "subscribe"}))
        reader = sock.makefile("rb")
        first = reader.readline(protocol.MAX_LINE)
        response = protocol.decode(first) if first else {}
        if not response.get("ok"):
            sock.close()
            raise RemoteError(int(response.get("code", 2)), str(response.get("error", "gone")))
        return Subscription(sock, reader, callback)


def as_event(msg: WatchMessage) -> Event | None:
    """A watcher message as the event a local Engine would have sent its subscribers (so a
    console subscribes to a RemoteEngine as it does to an Engine); None for control/end."""

    data = msg.data
    if msg.type == "snapshot":
        return SnapshotChanged(RunSnapshot.model_validate(data))
    if msg.type == "progress":
        flight = data.get("in_flight")
        return Progress(
            data["step"],
            data["table"],
            data["done"],
            data["total"],
            data["rate"],
            data["eta"],
            (int(flight[0]), int(flight[1]))
            if isinstance(flight, list) and len(flight) == 2
            else None,
            data.get("capacity") if isinstance(data.get("capacity"), str) else None,
        )
    if msg.type == "log":
        return LogLine(data["step"], data["level"], data["message"], data.get("at") or "")
    return None


class Subscription:
    def __init__(self, sock: socket.socket, reader: Any, callback: Callable[[WatchMessage], None]):
        self._sock = sock
        self._reader = reader
        self._callback = callback
        self.ended = threading.Event()  # the stream ended (engine exit, or close())
        self._thread = threading.Thread(target=self._read, name="control-watch", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for line in self._reader:
                obj = protocol.decode(line)
                self._callback(WatchMessage(str(obj.get("type")), obj.get("data")))
                if obj.get("type") == "end":
                    return
        except (OSError, ValueError, protocol.ProtocolError):
            return
        finally:
            self.ended.set()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(timeout=2)
