"""`runbook run --detach`: start the engine as its own process, in its own session, and return
once it holds the journal lock and listens on its control socket.

The child is the same CLI with `--detached-child`. Its stdin and stdout are /dev/null from the
start; its stderr is a pipe to the parent until it is ready: errors before that (a locked
journal, a bad runbook) reach the operator as the usual one line and exit code. Once ready it
writes one READY line with its pid and socket, and points stderr at /dev/null: nothing of the
engine is tied to the terminal that started it.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

READY = "RUNBOOK-ENGINE-READY "
CHILD_FLAG = "--detached-child"
READY_TIMEOUT_SECONDS = 300.0  # a first start creates the embedded world: allow for it


@dataclass(frozen=True)
class Started:
    pid: int
    socket: str
    journal: str
    log: str


class DetachFailed(Exception):
    def __init__(self, code: int, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.code = code
        self.lines = lines


def spawn(argv: list[str], timeout: float = READY_TIMEOUT_SECONDS) -> Started:
    """Start `runbook <argv> --detached-child` in a new session; wait for its READY line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", *argv, CHILD_FLAG],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # setsid: no controlling terminal, no SIGHUP from ours
        close_fds=True,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    buffer = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stderr, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DetachFailed(
                    2,
                    [f"runbook: the engine (pid {proc.pid}) did not report ready in {timeout:g} s"],
                )
            if not sel.select(left):
                continue
            chunk = os.read(proc.stderr.fileno(), 65536)
            if not chunk:
                break
            buffer += chunk
            while b"\n" in buffer:
                raw, buffer = buffer.split(b"\n", 1)
                text = raw.decode("utf-8", "replace")
                if text.startswith(READY):
                    info = json.loads(text[len(READY) :])
                    proc.stderr.close()
                    return Started(**info)
                lines.append(text)
    if buffer:
        lines.append(buffer.decode("utf-8", "replace"))
    code = proc.wait()
    raise DetachFailed(
        code or 2, lines or [f"runbook: the engine exited ({code}) before it was ready"]
    )


def signal_ready(info: dict[str, Any]) -> None:
    """In the child: tell the parent, then let go of its pipe for good."""
    with contextlib.suppress(OSError):
        sys.stderr.write(READY + json.dumps(info) + "\n")
        sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
