"""No process outlives the suite: every process a test starts (and all that those start) carries
the test's node id in its environment; at the end of the run, any that is still alive fails the
run, naming the test that started it, and is then killed so that CI leaves nothing behind.

Loaded as a plugin (`-p tests.support.processes` in pyproject's addopts). Each pytest process
that runs tests (an xdist worker, or pytest alone) checks the processes it started."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

SESSION_VAR = "RUNBOOK_TEST_SESSION"
NODE_VAR = "RUNBOOK_TEST_NODE"
GRACE_VAR = "RUNBOOK_TEST_GRACE_SECONDS"
GRACE_SECONDS = 15.0  # a server told to stop in a teardown may take a moment to go


def pytest_configure(config: pytest.Config) -> None:
    os.environ[SESSION_VAR] = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    os.environ[NODE_VAR] = item.nodeid  # module fixtures set up here carry it too
    yield
    os.environ.pop(NODE_VAR, None)


def started_here(session: str) -> dict[int, str]:
    """pid -> node id of every live process (not a zombie) whose environment names this
    session, but this process itself."""
    found: dict[int, str] = {}
    marker = f"{SESSION_VAR}={session}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if marker in environ and state != "Z":
            node = next((v for v in environ if v.startswith(NODE_VAR.encode() + b"=")), b"=")
            found[int(entry.name)] = node.split(b"=", 1)[1].decode(errors="replace") or "?"
    return found


def _command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:160]


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind() -> Iterator[None]:
    yield
    session = os.environ[SESSION_VAR]
    deadline = time.monotonic() + float(os.environ.get(GRACE_VAR, GRACE_SECONDS))
    left = started_here(session)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)  # the condition is checked again; nothing waits on a fixed delay
        left = started_here(session)
    if not left:
        return
    lines = [f"pid {pid} `{_command(pid)}`, started by {node}" for pid, node in left.items()]
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    pytest.fail("processes the suite started are still alive:\n" + "\n".join(lines))
