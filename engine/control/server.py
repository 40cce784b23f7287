"""The control socket: accepts same-user connections and hands their requests to the driver.

Each connection has its own thread; a request gets one response line. `subscribe` turns the
connection into a watcher stream (engine/control/fanout.py).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path
from typing import Any

from engine.control import protocol
from engine.control.driver import DetachedRun, Refused
from engine.control.fanout import Watcher
from engine.control.paths import SOCKET_MODE, prepare_dir, remove_stale
from engine.control.peer import peer_allowed, peer_credentials
from engine.core.outcome import BadRequest
from engine.state.errors import JournalError

BACKLOG = 16


def _text(value: Any, name: str, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise BadRequest(f"{name}: a non-empty text is needed")
    return value


def _limit(value: Any, name: str, kind: type) -> float | int | None:
    """A throttle value: a positive number, or None (no limit / the runbook's value)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise BadRequest(f"{name} must be a number above 0, or off")
    if kind is int and int(value) != value:
        raise BadRequest(f"{name} must be a whole number")
    return kind(value)


class ControlServer:
    def __init__(self, path: Path, journal_path: Path, driver: DetachedRun) -> None:
        self.path = path
        self.journal_path = journal_path
        self.driver = driver
        self._sock: socket.socket | None = None
        self._closing = threading.Event()

    def start(self) -> None:
        """Listen (we hold the journal lock, so a socket file already there is stale)."""
        prepare_dir(self.journal_path)
        remove_stale(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # the socket is created 0600: nobody else may even connect
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, SOCKET_MODE)
        sock.listen(BACKLOG)
        self._sock = sock
        threading.Thread(target=self._accept_loop, name="control-accept", daemon=True).start()

    def close(self) -> None:
        self._closing.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        with contextlib.suppress(OSError):
            remove_stale(self.path)

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._closing.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(
                target=self._serve_connection, args=(conn,), name="control-conn", daemon=True
            ).start()

    def _serve_connection(self, conn: socket.socket) -> None:
        with conn:
            _pid, uid, _gid = peer_credentials(conn)
            if not peer_allowed(uid):
                with contextlib.suppress(OSError):
                    conn.sendall(
                        protocol.encode(
                            protocol.failed(
                                protocol.CODE_REFUSED_PEER,
                                f"refused: uid {uid} is not the engine's user",
                            )
                        )
                    )
                return
            reader = conn.makefile("rb")
            while not self._closing.is_set():
                line = reader.readline(protocol.MAX_LINE + 1)
                if not line:
                    return
                if len(line) > protocol.MAX_LINE:
                    conn.sendall(protocol.encode(protocol.failed(2, "request too long")))
                    return
                try:
                    request = protocol.decode(line)
                except protocol.ProtocolError as exc:
                    conn.sendall(protocol.encode(protocol.failed(2, str(exc))))
                    continue
                if request.get("cmd") == "subscribe":
                    self._subscribe(conn)
                    return
                conn.sendall(protocol.encode(self.handle(request)))

    def _subscribe(self, conn: socket.socket) -> None:
        watcher = Watcher(conn)
        conn.sendall(protocol.encode(protocol.ok("watching")))
        self.driver.fanout.add(watcher, protocol.message("control", self.driver.control_state()))
        try:
            watcher.serve()
        finally:
            self.driver.fanout.remove(watcher)

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """One request -> one response; every error is a line with the CLI's exit code."""
        try:
            return self._dispatch(request)
        except BadRequest as exc:
            return protocol.failed(protocol.CODE_BAD_REQUEST, str(exc))
        except Refused as exc:
            return protocol.failed(protocol.CODE_FAILED, f"refused: {exc}")
        except (JournalError, ValueError) as exc:
            return protocol.failed(protocol.CODE_BAD_REQUEST, str(exc))
        except Exception as exc:  # the engine stays up whatever a request does
            self.driver.engine.log(f"control request failed: {type(exc).__name__}: {exc}", "error")
            return protocol.failed(protocol.CODE_BAD_REQUEST, f"{type(exc).__name__}: {exc}")

    def _dispatch(self, r: dict[str, Any]) -> dict[str, Any]:
        cmd = r.get("cmd")
        d = self.driver
        if cmd not in protocol.COMMANDS:
            raise BadRequest(f"unknown command {cmd!r}; known: {', '.join(protocol.COMMANDS)}")
        if cmd == "ping":
            return protocol.ok("pong", pid=os.getpid())
        if cmd == "status":
            snapshot = d.engine.status()  # the RunSnapshot, as `status --json` prints it
            return protocol.ok("", control=d.control_state(), snapshot=snapshot)
        if cmd == "evaluate":  # the console's gate screen: evidence now (recorded, then sent)
            d.engine.evaluate_gate(_text(r.get("gate"), "gate"))
            return protocol.ok()
        if cmd == "preview_rollback":
            return protocol.ok("", steps=d.preview_rollback(_text(r.get("phase"), "phase")))
        by = _text(r.get("by"), "by")
        note = _text(r.get("note"), "note", required=False)
        if cmd == "pause":
            return protocol.ok(d.pause(by), control=d.control_state())
        if cmd == "resume":
            approve = r.get("approve")
            approve = _text(approve, "approve") if approve is not None else None
            said = d.resume(by, bool(r.get("consent")), approve)
            return protocol.ok(said, control=d.control_state())
        if cmd == "stop":
            return protocol.ok(d.stop(by))
        if cmd == "throttle":
            changes: dict[str, float | int | None] = {}
            for name, kind in (("rate", float), ("in_flight", int), ("segments", int)):
                if name in r:
                    changes[name] = _limit(r[name], name.replace("_", "-"), kind)
            if "capacity_share" in r:
                share = _limit(r["capacity_share"], "capacity-share", float)
                if share is not None and share > 1:
                    raise BadRequest("capacity-share must be above 0 and at most 1, or off")
                changes["capacity_share"] = share
            if not changes:
                raise BadRequest(
                    "throttle: give --rate, --in-flight, --segments and/or --capacity-share"
                )
            return protocol.ok(d.throttle(by, **changes), control=d.control_state())
        if cmd == "tick":
            d.tick(_text(r.get("gate"), "gate"), _text(r.get("item"), "item"), by, note)
            return protocol.ok()
        if cmd == "untick":
            d.engine.untick(_text(r.get("gate"), "gate"), _text(r.get("item"), "item"), by)
            return protocol.ok()
        if cmd == "clock":
            scale = r.get("scale")
            if isinstance(scale, bool) or not isinstance(scale, int | float):
                raise BadRequest("clock: the scale must be a number")
            d.engine.set_time_scale(float(scale), by)  # a running wait follows at its next tick
            return protocol.ok(f"clock x{float(scale):g}")
        if cmd == "ack":
            d.ack(_text(r.get("step"), "step"), by, note)
            return protocol.ok()
        if cmd == "decide":
            override = r.get("override")
            evidence = d.decide(
                _text(r.get("gate"), "gate"),
                go=bool(r.get("go")),
                by=by,
                note=note,
                override=_text(override, "override") if override is not None else None,
            )
            return protocol.ok("", evidence=evidence)
        if cmd == "rollback":
            outcome = d.rollback(_text(r.get("phase"), "phase"), by)
            return protocol.ok(outcome.message, outcome=outcome.status)
        raise BadRequest(f"{cmd}: not served here")
