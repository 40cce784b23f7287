"""Opening a run: find or create the journal for a runbook and target, and check it matches."""

from __future__ import annotations

import os
import pwd
from datetime import UTC, datetime
from pathlib import Path

from engine.plan.loader import LoadedRunbook
from engine.state.errors import JournalError
from engine.state.journal import Journal, JournalStore, RunMeta, Target, utcnow


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "runbook-console"


def default_journal_path(runbook_id: str, target_slug: str) -> Path:
    return state_dir() / f"{runbook_id}--{target_slug}.toml"


def operator_name(explicit: str | None = None) -> str:
    """--operator, else $USER/$LOGNAME, else the login of this uid (tmux and cron often run
    without $USER): a decision is never recorded under a made-up name if a real one exists."""
    name = explicit or os.environ.get("USER") or os.environ.get("LOGNAME")
    if name:
        return name
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return "operator"


def same_target(a: Target, b: Target) -> bool:
    return (a.kind, a.identity, a.region) == (b.kind, b.identity, b.region)


def new_journal(loaded: LoadedRunbook, target: Target, operator: str) -> Journal:
    now = datetime.now(UTC).replace(microsecond=0)
    run = RunMeta(
        runbook_id=loaded.runbook.runbook.id,
        runbook_sha256=loaded.sha256,
        operator=operator,
        target=target,
        started_at=utcnow(),
        migration_ts=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    journal = Journal(run=run)
    journal.add_audit(operator, f"run started against {target.kind} {target.identity}")
    return journal


def check_journal(
    journal: Journal, loaded: LoadedRunbook, target: Target, accept_change: bool, operator: str
) -> None:
    """Refuse a journal of another target, or of a runbook that changed (unless accepted)."""
    recorded = journal.run.target
    if not same_target(recorded, target):
        raise JournalError(
            f"this journal belongs to target {recorded.kind} {recorded.identity} "
            f"({recorded.region}), not {target.kind} {target.identity} ({target.region}); "
            "refusing to resume against a different target"
        )
    if journal.run.runbook_id != loaded.runbook.runbook.id:
        raise JournalError(
            f"this journal is for runbook {journal.run.runbook_id!r}, "
            f"not {loaded.runbook.runbook.id!r}"
        )
    if journal.run.runbook_sha256 != loaded.sha256:
        if not accept_change:
            raise JournalError(
                f"the runbook {loaded.path} changed since this run began "
                f"(sha256 {journal.run.runbook_sha256[:12]} -> {loaded.sha256[:12]}); "
                "review the change, then pass --accept-runbook-change"
            )
        journal.run.accepted_runbook_changes.append(loaded.sha256)
        journal.add_audit(
            operator,
            f"accepted runbook change {journal.run.runbook_sha256[:12]} -> {loaded.sha256[:12]}",
        )
        journal.run.runbook_sha256 = loaded.sha256


def archive_journal(store: JournalStore) -> Path | None:
    """Move the previous run aside whole, never delete or overwrite any of it: its journal,
    `.log`, artifacts (archives of deleted tables are the only copy) and mapping overrides go
    together into one new folder `<stem>.<UTC stamp>.old/`."""
    if not store.exists():
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    dest = store.path.with_name(f"{store.path.stem}.{stamp}.old")
    n = 1
    while dest.exists():  # two fresh starts in one second: never reuse a name
        n += 1
        dest = store.path.with_name(f"{store.path.stem}.{stamp}-{n}.old")
    dest.mkdir(mode=0o700)
    stem = store.path.stem
    for part in (
        store.path,
        store.log_path,
        store.artifacts_dir,
        store.path.with_name(f"{stem}.mapping-overrides.toml"),
    ):
        if part.exists() or part.is_symlink():
            part.rename(dest / part.name)
    return dest
