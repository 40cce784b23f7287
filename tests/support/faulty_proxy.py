"""A loopback HTTP proxy in front of a moto server that breaks chosen answers the way a network
or a broken middlebox does: a 200 whose body is cut short (its length adjusted, so only the
JSON is wrong), a connection closed mid-body, or a 200 whose body is not JSON. Everything else
passes through unchanged. The engine is pointed at the proxy with --endpoint-url (or a
Connection), so the real client stack (botocore, urllib3) sees the fault."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qs, urlparse

Fault = Literal["truncate", "close", "not-json"]
FAULTS: tuple[Fault, ...] = ("truncate", "close", "not-json")


@dataclass
class Plan:
    """Which answers break: `pick(operation, n)` is asked for the n-th (0-based) answer of each
    operation (X-Amz-Target's name, e.g. "Scan"; the path for REST services)."""

    fault: Fault | Literal["rotate"]  # rotate: the k-th operation broken gets FAULTS[k % 3]
    pick: Callable[[str, int], bool]
    seen: dict[str, int] = field(default_factory=dict)
    broken: list[str] = field(default_factory=list)
    kinds: dict[str, Fault] = field(default_factory=dict)  # operation -> its fault (rotate)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def decide(self, operation: str) -> Fault | None:
        """The fault this answer gets, or None to pass it through."""
        with self.lock:
            n = self.seen.get(operation, 0)
            self.seen[operation] = n + 1
            if not self.pick(operation, n):
                return None
            self.broken.append(operation)
            if self.fault != "rotate":
                return self.fault
            return self.kinds.setdefault(operation, FAULTS[len(self.kinds) % len(FAULTS)])


def nth(operation: str, *numbers: int) -> Callable[[str, int], bool]:
    """Break these answers (0-based) of one operation."""
    return lambda op, n: op == operation and n in numbers


def operation_of(target: str | None, path: str, body: bytes) -> str:
    """The answer's operation: X-Amz-Target's name (json), the form's Action (query: every
    call posts to "/"), else the path (rest-json, CBOR)."""
    if target:
        return target.split(".")[-1]
    if path.split("?")[0] == "/" and body.startswith(b"Action="):
        return parse_qs(body.decode("utf-8", "replace")).get("Action", [path])[0]
    return path


class FaultyProxy:
    def __init__(self, upstream: str, plan: Plan) -> None:
        target = urlparse(upstream)
        host, port = target.hostname or "127.0.0.1", target.port or 80
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: object) -> None:  # quiet
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream_conn = http.client.HTTPConnection(host, port, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                upstream_conn.request(self.command, self.path, body, headers)
                answer = upstream_conn.getresponse()
                payload = answer.read()
                upstream_conn.close()
                operation = operation_of(self.headers.get("X-Amz-Target"), self.path, body)
                ok = 200 <= answer.status < 300
                fault = proxy.plan.decide(operation) if ok else None
                if fault == "truncate":
                    payload = payload[: len(payload) // 2]
                elif fault == "not-json":
                    payload = b"<html><body>502 Bad Gateway (upstream reset)</body></html>"
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                if fault == "close":
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _forward

        self.plan = plan
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultyProxy:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
