"""What `runbook iam-policy` reads besides the runbook: Day 1's inventory of the run (the
deprecated functions' roles, keys, layers, VPC, and what reads a legacy stream), beside the
run's journal; without one, the restore grants beyond the Lambda API are left out, and said.
And the REST API's id the journal holds since Day 1: the API Gateway grants name that API."""

from __future__ import annotations

from pathlib import Path

from engine.aws.restore_policy import RestoreNeeds, read_needs
from engine.aws.target import TargetSpec
from engine.cli.context import CliContext
from engine.runbook.model import Runbook
from engine.session.journals import default_journal_path, state_dir
from engine.state.errors import JournalError
from engine.state.journal import JournalStore
from engine.state.s3_location import parse_s3_url


def _journal_path(ctx: CliContext, rb: Runbook) -> Path:
    target = ctx.target
    journal = target.journal
    if journal is None:
        spec = TargetSpec(target.endpoint_url, target.profile, target.region)
        return default_journal_path(rb.runbook.id, spec.slug())
    if isinstance(journal, str):  # an S3 journal: its working copy on this machine
        return parse_s3_url(journal).cache_path(state_dir())
    return journal


def day1_inventory(ctx: CliContext, rb: Runbook) -> tuple[Path | None, RestoreNeeds | None]:
    """(the Day 1 inventory artifact looked for, what it records), (None, None) when the
    runbook has no Day 1 inventory step."""
    step = next(
        (
            s
            for s in rb.steps
            if s.action == "inventory_diff" and not s.params.get("expect_removed")
        ),
        None,
    )
    if step is None:
        return None, None
    journal = _journal_path(ctx, rb)
    path = journal.with_name(journal.stem + ".artifacts") / f"inventory-{step.id}.json"
    return path, read_needs(path)


def journaled_api_id(ctx: CliContext, rb: Runbook) -> str | None:
    """The REST API's id journaled on Day 1, None before (or without a readable journal)."""
    if rb.inventory.api is None:
        return None
    store = JournalStore(_journal_path(ctx, rb))
    if not store.exists():
        return None
    try:
        return store.load().api_id
    except JournalError:
        return None
