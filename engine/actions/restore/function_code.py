"""Which code a restored version is published with, and putting it on $LATEST.

A version whose archive holds its own package (cleanup/function_code.py: `code.versions`) is
published from it: $LATEST takes that code (UpdateFunctionCode, once no update is in progress),
then is published. Once every version is, $LATEST takes its own archived package back. A version
whose code was not archived keeps what a restore always did: $LATEST's archived code, and the
log says so.

Code is swapped only while $LATEST holds archived code ($LATEST's own, or one of the versions'):
a function whose $LATEST runs other code (redeployed since, kept as it is) or whose $LATEST
package was not archived (an image, a stub) publishes its versions with the code it has. That
test reads the live CodeSha256, so a resume after a crash anywhere (before a publish, after the
last one) ends with $LATEST on its own code again, with nothing journaled for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.actions.traffic.flags import retry_conflicts, wait_updated
from engine.core.context import ActionContext


class VersionCode:
    """The archived packages of one function's $LATEST and versions, by CodeSha256."""

    def __init__(self, record: dict[str, Any], folder: Path) -> None:
        code = record.get("code") or {}
        self.latest_sha = (record.get("configuration") or {}).get("CodeSha256", "")
        latest = folder / code["file"] if code.get("retrieved") and code.get("file") else None
        self.latest = latest if latest is not None and latest.exists() else None
        self.versions: dict[str, dict[str, str]] = code.get("versions") or {}
        self.files: dict[str, Path] = {}  # sha -> package, versions whose code differs only
        if self.latest is not None:  # without $LATEST's own package, no swap could be undone
            for v in self.versions.values():
                path = folder / v["file"] if v.get("file") else None
                if v["sha"] != self.latest_sha and path is not None and path.exists():
                    self.files[v["sha"]] = path

    def wanted(self, archived: dict[str, Any]) -> str:
        """The CodeSha256 a version is published with: its own when archived, else $LATEST's."""
        sha = archived.get("CodeSha256", "")
        return sha if sha in self.files else self.latest_sha

    def why_other(self, archived: dict[str, Any]) -> str:
        """Why a version came back with other code than its own."""
        if self.latest is None:
            return "$LATEST's code was not archived, so no version's is put back"
        sha = archived.get("CodeSha256")
        if sha in self.files or sha == self.latest_sha:
            return "$LATEST runs code that is not in the archive (kept as it is)"
        own = self.versions.get(archived["Version"]) or {}
        return f"its code was not archived ({own.get('reason') or 'an older archive'})"

    def swappable(self, live_sha: str) -> bool:
        """Whether $LATEST holds archived code (its own or a version's): ours to change."""
        return self.latest is not None and (live_sha == self.latest_sha or live_sha in self.files)

    def package(self, sha: str) -> bytes:
        path = self.files.get(sha) if sha != self.latest_sha else self.latest
        if path is None:
            raise KeyError(sha)
        return path.read_bytes()


def live_sha(lam: Any, fn: str) -> str:
    return str(lam.get_function_configuration(FunctionName=fn).get("CodeSha256", ""))


def put_code(ctx: ActionContext, lam: Any, fn: str, code: VersionCode, sha: str) -> bool:
    """Give $LATEST the archived package `sha` unless it has it, or runs code not ours to
    change; returns whether it updated."""
    now = live_sha(lam, fn)
    if not sha or now == sha or not code.swappable(now):
        return False
    package = code.package(sha)
    wait_updated(ctx, lam, fn)  # UpdateFunctionCode during an update: ResourceConflictException
    retry_conflicts(
        ctx,
        lam,
        f"{fn}: code",
        lambda: lam.update_function_code(FunctionName=fn, ZipFile=package),
    )
    wait_updated(ctx, lam, fn)  # LastUpdateStatus Successful before a publish
    return True
