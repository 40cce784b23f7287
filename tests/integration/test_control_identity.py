"""Who acts through a detached engine's socket, verified (issue 24): the OS user from the
kernel (SO_PEERCRED), whatever the line claims; the AWS identity from a signed STS request the
engine sends to its own STS endpoint (a moto server here), never one it is told."""

from __future__ import annotations

import json
import os
import pwd
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from engine.aws.caller_identity import ProofRefused, make_proof, verify_proof
from engine.aws.target import Connection, local_connection
from engine.control import protocol
from engine.control.client import RemoteEngine
from engine.control.job_loop import DetachedRun
from engine.control.paths import socket_path
from engine.control.server import ControlServer
from engine.core.commands import Caller, StsProof
from engine.core.outcome import CommandRefused
from engine.state.journal import JournalStore
from tests.support.paths import MINI_RUNBOOK
from tests.support.world import seeded_engine

ME = pwd.getpwuid(os.getuid()).pw_name
MOTO_ARN = "arn:aws:sts::123456789012:user/moto"
GATE, ITEM = "gate-phase2", "team-ready"


@pytest.fixture
def served(moto_endpoint: str, tmp_path: Path) -> Iterator[tuple[DetachedRun, Path, Connection]]:
    conn = local_connection(moto_endpoint, "us-east-1")
    journal = tmp_path / "j.toml"
    engine = seeded_engine(conn, journal, MINI_RUNBOOK, "world-ident", 100.0)
    engine.save()
    detached = DetachedRun(engine, consent=True, socket=str(socket_path(journal)))
    assert engine.run().waiting is not None  # at the gate, idle: commands come by the socket
    server = ControlServer(socket_path(journal), journal, detached)
    server.start()
    try:
        yield detached, journal, conn
    finally:
        server.close()


def _tick_identity(journal: Path):
    tick = JournalStore(journal).load().gates[GATE].ticks[ITEM]
    assert tick.identity is not None
    return tick.identity


def test_a_socket_peer_is_its_kernel_uid_and_its_signed_sts_identity(served) -> None:
    _detached, journal, conn = served
    remote = RemoteEngine(
        socket_path(journal), prove=lambda: make_proof(conn.session, conn.client("sts"))
    )
    remote.tick(GATE, ITEM, "alice")
    who = _tick_identity(journal)
    assert (who.via, who.os_user, who.uid, who.arn) == ("socket", ME, os.getuid(), MOTO_ARN)
    remote.throttle("alice", rate=50.0)
    audit = JournalStore(journal).load().audit[-1]
    assert audit.what.startswith("throttle:") and audit.principal == f"os:{ME}"
    assert audit.verified == f"os:{ME} (socket peer), {MOTO_ARN}"


def test_without_a_proof_only_the_os_user_is_verified_and_it_says_so(served) -> None:
    _detached, journal, _conn = served
    RemoteEngine(socket_path(journal)).tick(GATE, ITEM, "alice")
    who = _tick_identity(journal)
    assert (who.os_user, who.arn) == (ME, None)
    assert "no AWS identity verified" in who.text()


def test_the_uid_a_line_claims_is_replaced_by_the_kernels(served) -> None:
    _detached, journal, _conn = served
    line = {
        "cmd": "tick",
        "gate": GATE,
        "item": ITEM,
        "by": "mallory",
        "caller": {"peer_uid": 0 if os.getuid() else 4242},
    }
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(socket_path(journal)))
        sock.sendall(protocol.encode(line))
        answer = json.loads(sock.makefile("rb").readline())
    assert answer["ok"] is True
    assert _tick_identity(journal).uid == os.getuid()


def test_a_proof_aimed_at_another_sts_is_refused_and_nothing_changes(served) -> None:
    """A proof for an endpoint the caller runs could answer any ARN: the engine only asks its
    own STS endpoint."""
    _detached, journal, conn = served
    forged = make_proof(conn.session, conn.client("sts"))
    assert forged is not None
    elsewhere = StsProof(url="http://127.0.0.1:9/", headers=forged.headers)
    before = journal.read_bytes()
    remote = RemoteEngine(socket_path(journal))
    with pytest.raises(CommandRefused, match=r"not for this engine's STS endpoint"):
        remote.tick(GATE, ITEM, "alice", caller=Caller(proof=elsewhere))
    assert journal.read_bytes() == before
    assert "Signature" not in repr(elsewhere) and "Signature" not in str(Caller(proof=elsewhere))


def test_a_proof_sts_refuses_is_one_line(served) -> None:
    _detached, _journal, conn = served
    good = make_proof(conn.session, conn.client("sts"))
    assert good is not None
    # moto accepts any signature (its STS verifies nothing): what the engine does with STS's
    # refusal is shown by an STS that refuses: an endpoint answering 403, as AWS does
    refusal = threading.Event()
    class Sts(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            refusal.set()
            self.send_response(403)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Sts)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(ProofRefused, match=r"STS refused the identity proof \(HTTP 403\)"):
            verify_proof(StsProof(url=url, headers=good.headers), url)
        assert refusal.is_set()
    finally:
        server.shutdown()
        server.server_close()
