"""`runbook serve`: the view-only console in web browsers, for people without SSH.

textual-serve starts one process per browser connection from a command line: here
`runbook view` with the same runbook, journal and target flags (tui/view.py). It binds to
127.0.0.1 only, because textual-serve has no authentication of its own.
"""

from __future__ import annotations

import asyncio
import shlex
import socket
import sys
from typing import Any
from urllib.parse import urlparse

from aiohttp import web
from textual_serve.server import Server

from engine.cli.context import CliContext
from engine.session.workspace import BadInput, WorkspaceOptions


def same_origin(origin: str | None, host: str) -> bool:
    """A browser's websocket from a page of this server (Origin names the Host it asked for):
    through `ssh -L` too, where both are the tunnel's localhost:PORT. Without an Origin the
    client is no browser page (nothing another site could make a browser send)."""
    if origin is None:
        return True
    parsed = urlparse(origin)
    return parsed.scheme in ("http", "https") and parsed.netloc.lower() == host.lower()


# flags that change the run: a watcher has no business with them
ACTING_FLAGS = {"fresh": "--fresh", "time_scale": "--time-scale", "take_over": "--take-over"}
PASSED_FLAGS = ("endpoint_url", "profile", "region", "operator", "state_profile")


class ViewServer(Server):
    """textual-serve, whose stop also ends the browsers' sessions (and so their view
    processes) at once, instead of waiting for every open page to go away."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions: set[asyncio.Task[Any]] = set()

    async def handle_websocket(self, request: Any) -> Any:
        if not same_origin(request.headers.get("Origin"), request.host):
            # any page the operator opens could otherwise read the run
            return web.Response(status=403, text="cross-origin websocket refused\n")
        task = asyncio.current_task()
        assert task is not None
        self.sessions.add(task)
        try:
            return await super().handle_websocket(request)
        finally:
            self.sessions.discard(task)

    async def on_shutdown(self, app: Any) -> None:
        for task in list(self.sessions):
            task.cancel()  # the handler closes the page's socket and quits its view


def view_command(target: WorkspaceOptions, workspace: Any) -> str:
    """The shell command textual-serve runs per browser: the same run, view-only."""
    argv = [
        sys.executable,
        "-m",
        "runbook_entry",
        "view",
        "--runbook",
        str(workspace.loaded.path.resolve()),
        "--journal",
        workspace.journal_arg if workspace.remote else str(workspace.journal_path.resolve()),
    ]
    for flag in PASSED_FLAGS:
        value = getattr(target, flag)
        if value:
            argv += [f"--{flag.replace('_', '-')}", str(value)]
    return shlex.join(argv)


def _refuse_acting_flags(target: WorkspaceOptions) -> None:
    given = [flag for name, flag in ACTING_FLAGS.items() if getattr(target, name)]
    if given:
        raise BadInput(
            f"serve only shows the run; {' and '.join(given)} would change it: "
            f"use {'it' if len(given) == 1 else 'them'} with `runbook run`"
        )


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # as the server will: a port whose last connections linger in TIME_WAIT is free
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise BadInput(
                f"cannot listen on {host}:{port} ({exc.strerror}); pick another with --port"
            ) from None


def serve(ctx: CliContext, workspace: Any) -> int:
    """Serve until Ctrl+C (or SIGTERM). Exits 2 when there is no run to show."""
    args = ctx.args
    _refuse_acting_flags(ctx.target)
    engine = workspace.open_read_only()  # no run yet, or another runbook's: one line, exit 2
    _check_port_free(args.host, args.port)
    run_id = engine.journal.run.runbook_id
    print(
        f"runbook serve: the read-only console of {workspace.journal_arg} at "
        f"http://{args.host}:{args.port}/ (no authentication: this machine only; "
        "share it with `ssh -L`). Ctrl+C stops serving; the run is not affected.",
        flush=True,
    )
    server = ViewServer(
        view_command(ctx.target, workspace),
        host=args.host,
        port=args.port,
        title=f"runbook-console · {run_id} (read-only)",
    )
    server.serve()
    return 0
