"""The control socket: accepts same-user connections and hands their requests to the detached
engine (`DetachedRun`, through the table of engine/control/requests.py).

Each connection has its own thread; a request gets one response line. `subscribe` turns the
connection into a watcher stream (engine/control/fanout.py).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path

from engine.control import protocol
from engine.control.fanout import Watcher
from engine.control.job_loop import DetachedRun
from engine.control.paths import SOCKET_MODE, prepare_dir, remove_stale
from engine.control.peer import peer_allowed, peer_credentials
from engine.control.requests import Subscribe, parse_request
from engine.core.commands import Refusal
from engine.core.outcome import BadRequest, CommandRefused, NotAllowed
from engine.state.errors import JournalError

BACKLOG = 16


class ControlServer:
    def __init__(self, path: Path, journal_path: Path, detached: DetachedRun) -> None:
        self.path = path
        self.journal_path = journal_path
        self.detached = detached
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
                refusal = Refusal.of(NotAllowed(f"uid {uid} is not the engine's user"))
                with contextlib.suppress(OSError):
                    conn.sendall(protocol.refused(refusal))
                return
            reader = conn.makefile("rb")
            while not self._closing.is_set():
                line = reader.readline(protocol.MAX_LINE + 1)
                if not line:
                    return
                if len(line) > protocol.MAX_LINE:
                    conn.sendall(protocol.refused(Refusal.of(BadRequest("request too long"))))
                    return
                if self._is_subscribe(line):
                    self._subscribe(conn)
                    return
                conn.sendall(self.handle(line, uid))

    @staticmethod
    def _is_subscribe(line: bytes) -> bool:
        try:
            return isinstance(parse_request(protocol.decode(line)), Subscribe)
        except (protocol.ProtocolError, BadRequest):
            return False

    def _subscribe(self, conn: socket.socket) -> None:
        watcher = Watcher(conn)
        conn.sendall(protocol.answered("watching"))
        self.detached.fanout.add(watcher, protocol.control_message(self.detached.control_state()))
        try:
            watcher.serve()
        finally:
            self.detached.fanout.remove(watcher)

    def handle(self, line: bytes, peer_uid: int) -> bytes:
        """One request line -> one response line; a refusal is a typed value (`Refusal`).
        `peer_uid`: the sender's uid from the kernel, the verified OS user of what it does."""
        try:
            request = parse_request(protocol.decode(line)).from_peer(peer_uid)
            answer = request.apply(self.detached)
            return protocol.answered(request.answer.dump_python(answer, mode="json"))
        except protocol.ProtocolError as exc:
            return protocol.refused(Refusal.of(BadRequest(str(exc))))
        except (BadRequest, CommandRefused, NotAllowed) as exc:
            return protocol.refused(Refusal.of(exc))
        except (JournalError, ValueError) as exc:
            return protocol.refused(Refusal.of(BadRequest(str(exc))))
        except Exception as exc:  # the engine stays up whatever a request does
            self.detached.engine.log(
                f"control request failed: {type(exc).__name__}: {exc}", "error"
            )
            return protocol.refused(Refusal.of(BadRequest(f"{type(exc).__name__}: {exc}")))
