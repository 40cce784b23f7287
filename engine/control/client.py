"""The client side of the control socket.

`RemoteEngine` offers the engine's commands (`EngineCommands` and `ControlCommands`,
engine/core/commands.py) and `subscribe(callback)`, so a console drives a detached engine the
way it drives a local one, and gets the same models back. A refusal comes back as the same
exception the engine raised (`CommandRefused`, `BadRequest`, `NotAllowed`).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.control import protocol
from engine.control.requests import (
    Ack,
    Clock,
    Decide,
    Evaluate,
    Pause,
    Ping,
    PreviewRollback,
    Request,
    Resume,
    Rollback,
    Status,
    StatusAnswer,
    Stop,
    Subscribe,
    Throttle,
    Tick,
    Untick,
)
from engine.core.commands import Caller, ControlState, GateEvidence, RollbackPreview, StsProof
from engine.core.events import Event, LogLine, Progress, SnapshotChanged
from engine.core.outcome import BadRequest, Outcome
from engine.core.views import RunSnapshot

CONNECT_TIMEOUT = 5.0


class EngineGone(Exception):
    """Nobody listens on the socket (the engine exited, or died and left its socket)."""


@dataclass(frozen=True)
class WatchMessage:
    type: str  # snapshot | progress | log | control | end
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


def _response(line: bytes) -> protocol.Response:
    try:
        return protocol.Response.model_validate(protocol.decode(line))
    except ValueError as exc:  # another version's engine
        raise BadRequest(f"an answer this client cannot read: {exc}") from None


class RemoteEngine:
    def __init__(self, path: Path, prove: Callable[[], StsProof | None] | None = None) -> None:
        self.path = path
        # signs this side's STS identity for the engine to verify (None: the OS user only)
        self.prove = prove

    def _caller(self, caller: Caller | None) -> Caller:
        """What this side says about who acts: its proof added (the engine adds the uid)."""
        caller = caller or Caller()
        if caller.proof is None and self.prove is not None:
            caller = caller.model_copy(update={"proof": self.prove()})
        return caller

    # ---- one request, one response ---------------------------------------------------------

    def call(self, request: Request) -> Any:
        """Send one request; its answer (the request's `answer` type), or the refusal raised."""
        with _connect(self.path, request.timeout) as sock:
            sock.sendall(protocol.encode(request.wire()))
            line = sock.makefile("rb").readline(protocol.MAX_LINE * 64)
        if not line:
            raise EngineGone("the engine closed the connection without answering")
        try:
            return request.answer.validate_python(_response(line).result())
        except ValidationError as exc:  # another version's engine
            raise BadRequest(f"an answer this client cannot read: {exc}") from None

    def ping(self) -> int:
        return int(self.call(Ping()))

    def status(self) -> StatusAnswer:
        return self.call(Status())

    def snapshot(self) -> RunSnapshot:
        return self.status().snapshot

    def control_state(self) -> ControlState:
        return self.status().control

    def pause(self, by: str, caller: Caller | None = None) -> str:
        return self.call(Pause(by=by, caller=self._caller(caller)))

    def resume(
        self,
        by: str,
        consent: bool = False,
        approve: str | None = None,
        caller: Caller | None = None,
    ) -> str:
        return self.call(
            Resume(by=by, consent=consent, approve=approve, caller=self._caller(caller))
        )

    def stop(self, by: str, caller: Caller | None = None) -> str:
        return self.call(Stop(by=by, caller=self._caller(caller)))

    def throttle(self, by: str, caller: Caller | None = None, **changes: float | int | None) -> str:
        return self.call(Throttle(by=by, caller=self._caller(caller), **changes))  # type: ignore[arg-type]

    def tick(
        self, gate_id: str, item_id: str, by: str, note: str = "", caller: Caller | None = None
    ) -> None:
        self.call(Tick(gate=gate_id, item=item_id, by=by, note=note, caller=self._caller(caller)))

    def untick(self, gate_id: str, item_id: str, by: str, caller: Caller | None = None) -> None:
        self.call(Untick(gate=gate_id, item=item_id, by=by, caller=self._caller(caller)))

    def evaluate_gate(self, gate_id: str) -> GateEvidence:
        return self.call(Evaluate(gate=gate_id))

    def set_time_scale(self, scale: float, by: str) -> None:
        self.call(Clock(scale=scale, by=by))

    def ack(self, step_id: str, by: str, note: str = "", caller: Caller | None = None) -> None:
        self.call(Ack(step=step_id, by=by, note=note, caller=self._caller(caller)))

    def decide(
        self,
        gate_id: str,
        go: bool,
        by: str,
        note: str = "",
        override: str | None = None,
        caller: Caller | None = None,
    ) -> GateEvidence:
        return self.call(
            Decide(
                gate=gate_id,
                go=go,
                by=by,
                note=note,
                override=override,
                caller=self._caller(caller),
            )
        )

    def preview_rollback(self, phase_id: str) -> RollbackPreview:
        return self.call(PreviewRollback(phase=phase_id))

    def rollback(self, phase_id: str, by: str, caller: Caller | None = None) -> Outcome:
        """The caller asked for consent already; answers when the rollback is done."""
        return self.call(Rollback(phase=phase_id, by=by, caller=self._caller(caller)))

    # ---- watching --------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[WatchMessage], None]) -> Subscription:
        """Call `callback` (in a reader thread) with every message until the engine ends or
        `Subscription.close()`."""
        sock = _connect(self.path, None)
        sock.sendall(protocol.encode(Subscribe().wire()))
        reader = sock.makefile("rb")
        first = reader.readline(protocol.MAX_LINE)
        if not first:
            sock.close()
            raise EngineGone("the engine closed the connection without answering")
        try:
            _response(first).result()
        except Exception:
            sock.close()
            raise
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
