"""`runbook serve` in a real browser: headless Chromium loads the page, the console's timeline
appears, no action is offered, and keys typed into the page change nothing in the journal."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.cli.app import main
from engine.state.lock import lock_path_for
from tests.support.browser import Browser, find_chromium
from tests.support.paths import MINI_RUNBOOK
from tests.support.world import seed_endpoint

ACTING = (
    "Run/resume",
    "Stop",
    "Ack",
    "Rollback",
    "Tick",
    "NO-GO",
    "Re-check",
    "override",
    "Faster",
)


def _chromium() -> str:
    path = find_chromium()
    if path is None:
        message = "chromium is not installed (CI installs it: apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_listening(process: subprocess.Popen, port: int, out: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"runbook serve exited {process.returncode}:\n{out.read_text()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)  # polling a port, with a deadline
    raise AssertionError(f"runbook serve did not listen on {port}:\n{out.read_text()}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_no_view_of(journal: Path, timeout: float = 10) -> None:
    """No `runbook view` process of this journal is left (polled, with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for proc in Path("/proc").iterdir():
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"view" in argv and str(journal).encode() in argv:
                left.append(proc.name)
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"view processes left behind: {left}"


def _footer(screen: str) -> str:
    return screen.rstrip("\n").splitlines()[-1]


async def test_served_console_in_chromium_shows_the_run_and_offers_no_action(
    moto_endpoint: str, tmp_path: Path
) -> None:
    from engine.plan.loader import load_runbook

    chromium = _chromium()
    started = time.monotonic()
    seed_endpoint(moto_endpoint, load_runbook(MINI_RUNBOOK).runbook)
    journal = tmp_path / "j.toml"
    target = ["--runbook", str(MINI_RUNBOOK), "--endpoint-url", moto_endpoint]
    target += ["--journal", str(journal)]
    assert main(["run", *target, "--yes", "--time-scale", "100"]) == 3  # waits at the gate
    before = journal.read_bytes()
    marks = {"journal ready": time.monotonic() - started}

    port = _free_port()
    out = tmp_path / "serve.out"
    with out.open("w") as sink:
        serve = subprocess.Popen(
            [sys.executable, "-m", "runbook_entry", "serve", *target, "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "100"},
            start_new_session=True,  # its view processes go with it
        )
    try:
        _wait_listening(serve, port, out)
        marks["serve listening"] = time.monotonic() - started
        async with Browser(chromium) as browser:
            marks["chromium ready"] = time.monotonic() - started
            await browser.open(f"http://127.0.0.1:{port}/")
            screen = await browser.wait_for_screen(
                lambda s: "backup-tables" in s and "gate-phase2" in s and "Keys" in _footer(s)
            )
            marks["console drawn"] = time.monotonic() - started
            try:
                assert "READ-ONLY" in screen
                footer = _footer(screen)
                assert "Gate" in footer and "Quit" in footer
                for name in ACTING:
                    assert name not in footer, footer
                # keys typed into the page: r would run, + speed the clock, g then y/space
                # would decide or tick
                await browser.press("r")
                await browser.press("+")
                await browser.press("g")
                gate = await browser.wait_for_screen(lambda s: "READ-ONLY: " in s)
                assert "Go/No-Go before Phase 2" in gate
                for name in (*ACTING, "GO"):
                    assert name not in _footer(gate), _footer(gate)
                for key in (" ", "y", "n", "o"):
                    await browser.press(key)
                await browser.press("Escape")
                await browser.wait_for_screen(lambda s: "press g to open the gate" in s)
                await browser.press("?")  # the keys list: viewing keys only
                keys = await browser.wait_for_screen(lambda s: "esc or ? closes" in s)
                assert "Run log" in keys
                for name in ACTING:
                    assert name not in keys, keys
            finally:
                await browser.screenshot(tmp_path / "served.png")
            # Ctrl+C (SIGTERM here) with a page still open: serve ends it and its view process
            stopping = time.monotonic()
            await asyncio.to_thread(_stop, serve)
            assert serve.returncode == 0, out.read_text()
            assert time.monotonic() - stopping < 10
        _wait_no_view_of(journal)
        assert journal.read_bytes() == before  # nothing was decided, ticked or run
        assert lock_path_for(journal).read_bytes() == b""  # no viewer ever held the lock
    finally:
        _stop(serve)
    assert f"http://127.0.0.1:{port}/" in out.read_text()
    marks["done"] = time.monotonic() - started
    print(" · ".join(f"{name} {at:.1f} s" for name, at in marks.items()))  # pytest -s


EVIL_PAGE = """<!doctype html><title>waiting</title><script>
const ws = new WebSocket("ws://127.0.0.1:PORT/ws");
ws.onopen = () => { document.title = "opened"; };
ws.onerror = () => { document.title = "refused"; };
ws.onclose = () => { if (document.title === "waiting") document.title = "refused"; };
</script>"""


async def test_another_site_cannot_read_the_served_console(
    moto_endpoint: str, tmp_path: Path
) -> None:
    """Issue 20, item 7: a page from any other origin (here another local port) that opens
    the console's websocket is refused; the console's own page still connects."""
    import http.server
    import threading

    from engine.plan.loader import load_runbook

    chromium = _chromium()
    seed_endpoint(moto_endpoint, load_runbook(MINI_RUNBOOK).runbook)
    journal = tmp_path / "j.toml"
    target = ["--runbook", str(MINI_RUNBOOK), "--endpoint-url", moto_endpoint]
    target += ["--journal", str(journal)]
    assert main(["run", *target, "--yes", "--time-scale", "100"]) == 3
    port = _free_port()
    site = tmp_path / "evil"
    site.mkdir()
    (site / "index.html").write_text(EVIL_PAGE.replace("PORT", str(port)))
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(site))  # noqa: E731
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    out = tmp_path / "serve.out"
    with out.open("w") as sink:
        serve = subprocess.Popen(
            [sys.executable, "-m", "runbook_entry", "serve", *target, "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        _wait_listening(serve, port, out)
        async with Browser(chromium) as browser:
            await browser.open(f"http://127.0.0.1:{evil.server_address[1]}/index.html")
            title = "waiting"
            deadline = time.monotonic() + 30
            while title == "waiting" and time.monotonic() < deadline:
                await asyncio.sleep(0.1)  # polling the page's own verdict, with a deadline
                result = await browser.call(
                    "Runtime.evaluate", expression="document.title", returnByValue=True
                )
                title = result["result"].get("value")
            assert title == "refused", title
            await browser.open(f"http://127.0.0.1:{port}/")  # the console's own page
            await browser.wait_for_screen(lambda s: "gate-phase2" in s)
        await asyncio.to_thread(_stop, serve)
        _wait_no_view_of(journal)
    finally:
        _stop(serve)
        evil.shutdown()
