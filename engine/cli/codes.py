"""The CLI's exit codes: a contract with scripts and tests (and the outcome each one tells)."""

from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_WAITING, EXIT_LOCKED, EXIT_INTERRUPTED = (
    0,
    1,
    2,
    3,
    4,
    130,
)
OUTCOME_EXIT = {
    "done": EXIT_OK,
    "waiting": EXIT_WAITING,
    "failed": EXIT_FAILED,
    "declined": EXIT_FAILED,
    "interrupted": EXIT_INTERRUPTED,
    "paused": EXIT_WAITING,
}
