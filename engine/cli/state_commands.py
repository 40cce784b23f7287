"""`runbook state push s3://...` and `runbook state pull DIR`: move a run between this machine
and S3, after which the side it left refuses to drive (engine/session/state_move.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from engine.cli.codes import EXIT_OK
from engine.cli.context import CliContext
from engine.cli.output import say
from engine.rehearsal.embedded import carry_world, forget_world, record_path_for
from engine.session.state_move import pull, push
from engine.session.workspace import BadInput, Workspace


def cmd_state(ctx: CliContext) -> int:
    args = ctx.args
    here = ctx.workspace()
    if args.state_command == "push":
        if here.remote is not None:
            raise BadInput(
                "state push moves a local run to S3: --journal names the local journal (or is "
                "left out), the URL where the run goes"
            )
        there = Workspace(dataclasses.replace(here.options, journal=args.url, fresh=False))
        here.acquire("state push")
        try:
            kept = _push(here, there)
        finally:
            here.release()
        say(
            f"the run is now at {args.url}: drive it with --journal {args.url}; this machine's "
            f"copy is kept aside in {kept} and {here.journal_path} refuses to drive"
        )
        return EXIT_OK
    if here.remote is None:
        raise BadInput("state pull copies a run kept in S3: pass its --journal s3://...")
    here.acquire("state pull")
    try:
        path = pull(here.remote, args.dir)
        if here.is_embedded:  # the rehearsal's world goes with its run
            world = record_path_for(here.journal_path)
            carry_world(world, record_path_for(path))
            forget_world(world)
    finally:
        here.release()
    say(
        f"the run is now at {path}: drive it with --journal {path}; "
        f"{here.remote.location.url} refuses to drive"
    )
    return EXIT_OK


def _push(here: Workspace, there: Workspace) -> Path | None:
    """The run (and a rehearsal's world) moved to S3; the local copy kept aside."""
    world = record_path_for(here.journal_path)
    carried = record_path_for(there.journal_path) if here.is_embedded else None
    if carried is not None:
        carry_world(world, carried)  # before S3's side connects: it reconnects this world
    try:
        there.acquire("state push")
        try:
            assert there.remote is not None
            kept = push(here.store, there.remote)
        finally:
            there.release()
    except BaseException:
        if carried is not None:
            forget_world(carried)  # the run stays here, and so does its world
        raise
    forget_world(world)
    return kept
