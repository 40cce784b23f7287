"""The Workspace the flags name (built once per command), and driving it under the lock."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from engine.run.engine import Engine
from engine.session.workspace import Workspace, WorkspaceOptions


def open_workspace(args: argparse.Namespace) -> Workspace:
    cached = getattr(args, "open_workspace", None)
    if cached is not None:  # detach: the engine probe built it already
        return cached
    args._workspace = Workspace(
        WorkspaceOptions(
            runbook=args.runbook,
            journal=args.journal,
            endpoint_url=args.endpoint_url,
            profile=args.profile,
            region=args.region,
            operator=args.operator,
            time_scale=args.time_scale,
            accept_runbook_change=args.accept_runbook_change,
            mapping_overrides=args.mapping_overrides,
            fresh=args.fresh,
            read_timeout=args.read_timeout,
            state_profile=args.state_profile,
            state_kms_key=args.state_kms_key,
            take_over=args.take_over,
        )
    )
    return args._workspace


def drive_engine(args: argparse.Namespace, operation: str, body: Callable[[Engine], int]) -> int:
    ws = open_workspace(args)
    ws.acquire(operation)
    try:
        engine = ws.open(create=operation == "run")
        return body(engine)
    finally:
        ws.release()
