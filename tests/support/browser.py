"""Headless Chromium driven over the DevTools protocol (aiohttp's websocket client): load a
page, read the text its xterm.js terminal holds, press keys, take a screenshot.

textual-serve's page draws the terminal on a canvas, so the DOM holds no text. The page keeps
its xterm `Terminal` in a closure; HOOK, run before the page's own scripts, catches the
assignment `this.terminal = new Terminal(...)` and keeps a reference, through which the test
reads the terminal's buffer: exactly what the browser shows.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

HOOK = """
Object.defineProperty(Object.prototype, 'terminal', {
  configurable: true,
  set(value) {
    Object.defineProperty(this, 'terminal',
      {value, writable: true, configurable: true, enumerable: true});
    window.__servedTerminal = value;
  },
});
"""

READ_SCREEN = """(() => {
  const term = window.__servedTerminal;
  if (!term) return null;
  const buffer = term.buffer.active, rows = [];
  for (let y = 0; y < term.rows; y++) {
    const line = buffer.getLine(buffer.viewportY + y);
    rows.push(line ? line.translateToString(true) : '');
  }
  return rows.join('\\n');
})()"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    return None


class Browser:
    """One headless Chromium with one page."""

    def __init__(self, executable: str, width: int = 1100, height: int = 700) -> None:
        self.executable = executable
        self.size = (width, height)
        self.profile = tempfile.mkdtemp(prefix="chromium-")
        self.process: subprocess.Popen[str] | None = None
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.ids = itertools.count(1)

    async def __aenter__(self) -> Browser:
        self.process = subprocess.Popen(
            [
                self.executable,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                f"--window-size={self.size[0]},{self.size[1]}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        endpoint = await asyncio.wait_for(asyncio.to_thread(self._devtools_url), 30)
        port = endpoint.split(":")[2].split("/")[0]
        self.session = aiohttp.ClientSession()
        async with self.session.get(f"http://127.0.0.1:{port}/json/list") as response:
            pages = [t for t in await response.json() if t["type"] == "page"]
        self.ws = await self.session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)
        await self.call("Page.enable")
        # a headless page never has the window's focus; a person's browser tab has it
        await self.call("Emulation.setFocusEmulationEnabled", enabled=True)
        await self.call("Page.addScriptToEvaluateOnNewDocument", source=HOOK)
        return self

    def _devtools_url(self) -> str:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:  # Chromium says where DevTools listens, then goes on
            if match := re.search(r"DevTools listening on (ws://\S+)", line):
                threading_drain(self.process.stderr)
                return match.group(1)
        raise RuntimeError(f"chromium exited ({self.process.wait()}) before DevTools listened")

    async def __aexit__(self, *exc: object) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.session is not None:
            await self.session.close()
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        assert self.ws is not None
        call_id = next(self.ids)
        await self.ws.send_json({"id": call_id, "method": method, "params": params})
        while True:  # events arrive in between; skip them
            message = await asyncio.wait_for(self.ws.receive_json(), 30)
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    async def open(self, url: str) -> None:
        await self.call("Page.navigate", url=url)

    async def screen(self) -> str:
        """The terminal's rows as text ('' until the page has made its terminal)."""
        result = await self.call("Runtime.evaluate", expression=READ_SCREEN, returnByValue=True)
        return result["result"].get("value") or ""

    async def wait_for_screen(self, ready: Callable[[str], bool], timeout: float = 30) -> str:
        """Poll the terminal until `ready(text)` or the deadline (then fail with the text)."""
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = await self.screen()
            if ready(text):
                return text
            await asyncio.sleep(0.1)
        raise AssertionError(f"the page never showed what was awaited; it shows:\n{text}")

    async def focus(self) -> None:
        """Into the terminal, as a click would (the app learns it has the focus)."""
        await self.call(
            "Runtime.evaluate", expression="window.__servedTerminal.focus()", returnByValue=True
        )

    async def press(self, key: str, text: str | None = None) -> None:
        """A key typed into the terminal (focused first), as a person would."""
        await self.focus()
        typed = key if text is None and len(key) == 1 else (text or "")
        down: dict[str, Any] = {"type": "keyDown", "key": key}
        if typed:
            down["text"] = typed
        elif key == "Escape":
            down.update(code="Escape", windowsVirtualKeyCode=27)
        await self.call("Input.dispatchKeyEvent", **down)
        await self.call("Input.dispatchKeyEvent", type="keyUp", key=key)

    async def screenshot(self, path: Path) -> None:
        shot = await self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))


def threading_drain(stream: Any) -> None:
    """Keep reading Chromium's stderr so that a full pipe never blocks it."""
    import threading

    def drain() -> None:
        with contextlib.suppress(ValueError, OSError):
            for _ in stream:
                pass

    threading.Thread(target=drain, daemon=True).start()
