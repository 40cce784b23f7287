"""The per-item ledger of one migrate step: quarantined items and collisions, keyed by source
key in `migrate-<entity>.sqlite` (idempotent across resumes), exported to
`quarantine-<entity>.jsonl` and `collisions-<entity>.jsonl` at the end."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from engine.aws.target_fit import REASON_PREFIX
from engine.core.context import ActionContext
from engine.runbook.transforms import json_safe
from engine.state.artifact_copy import side_files

TARGET_REJECTED = "target rejected the write: "  # a ValidationException the check did not foresee


def ledger_name(entity: str) -> str:
    return f"migrate-{entity}.sqlite"


class Ledger:
    """Per-item outcomes of one migrate step, keyed by source key (INSERT OR IGNORE: a page
    re-run after a resume records nothing twice)."""

    def __init__(self, path: Path, fresh: bool) -> None:
        if fresh:
            for stale in (path, *side_files(path)):
                stale.unlink(missing_ok=True)
        self.db = sqlite3.connect(path, check_same_thread=False)  # segment threads, locked
        # WAL: a process killed mid-commit leaves the last commit whole (journal_mode=OFF
        # could corrupt it), and a copy taken for S3 reads a committed state without waiting
        self.db.executescript(
            """
            PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;
            CREATE TABLE IF NOT EXISTS quarantine (skey TEXT PRIMARY KEY, reason TEXT,
                item TEXT) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS collisions (skey TEXT PRIMARY KEY, company TEXT, id TEXT,
                user TEXT, reason TEXT, existing TEXT, item TEXT) WITHOUT ROWID;
            """
        )

    def quarantine(self, skey: str, reason: str, item: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO quarantine VALUES (?,?,?)",
            (skey, reason, json.dumps(json_safe(item), sort_keys=True)),
        )

    def collision(
        self,
        skey: str,
        company: str,
        ident: str,
        user: str,
        reason: str,
        existing: str,
        item: dict[str, Any],
    ) -> None:
        """The legacy item is kept whole: after cleanup it exists nowhere else but a backup."""
        self.db.execute(
            "INSERT OR IGNORE INTO collisions VALUES (?,?,?,?,?,?,?)",
            (
                skey,
                company,
                ident,
                user,
                reason,
                existing,
                json.dumps(json_safe(item), sort_keys=True),
            ),
        )

    def quarantine_reason(self, skey: str) -> str | None:
        row = self.db.execute("SELECT reason FROM quarantine WHERE skey=?", (skey,)).fetchone()
        return None if row is None else str(row[0])

    def is_quarantined(self, skey: str) -> bool:
        return self.quarantine_reason(skey) is not None

    def count(self, table: str) -> int:
        return int(self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def count_rejected_by_target(self) -> int:
        """Quarantined because the target table cannot hold them (check or ValidationException)."""
        row = self.db.execute(
            "SELECT COUNT(*) FROM quarantine WHERE reason LIKE ? OR reason LIKE ?",
            (REASON_PREFIX + "%", TARGET_REJECTED + "%"),
        ).fetchone()
        return int(row[0])

    def export(self, ctx: ActionContext, entity: str) -> list[str]:
        q_name, c_name = f"quarantine-{entity}.jsonl", f"collisions-{entity}.jsonl"
        with ctx.artifact(q_name).open("w") as fh:
            for skey, reason, item in self.db.execute("SELECT * FROM quarantine ORDER BY 1"):
                row = {"key": json.loads(skey), "reason": reason, "item": json.loads(item)}
                fh.write(json.dumps(row, sort_keys=True) + "\n")
        with ctx.artifact(c_name).open("w") as fh:
            for skey, company, ident, user, reason, existing, item in self.db.execute(
                "SELECT * FROM collisions ORDER BY 1"
            ):
                row = {
                    "key": json.loads(skey),
                    "company": company,
                    "id": ident,
                    "user": user,
                    "reason": reason,
                    "existing_created_by": existing,
                    "item": json.loads(item),
                }
                fh.write(json.dumps(row, sort_keys=True) + "\n")
        return [q_name, c_name]

    def close(self) -> None:
        self.db.commit()
        self.db.close()
