"""Deprecated Lambda runtimes (the runbook's `[[lambda_runtimes]]`), pure: which runtime is
deprecated or blocked for creates on a date, and what a restore creates instead.

AWS blocks CreateFunction on a runtime some months after deprecating it; a function on it
that was deleted cannot be created again as it was. The runbook's restore_functions step can
name a replacement per runtime (`replacement_runtimes = { "python3.8" = "python3.12" }`)."""

from __future__ import annotations

from datetime import date

from engine.runbook.model import RuntimeLifecycle


def lifecycle_of(runtimes: list[RuntimeLifecycle], runtime: str) -> RuntimeLifecycle | None:
    return next((r for r in runtimes if r.name == runtime), None)


def is_deprecated(runtimes: list[RuntimeLifecycle], runtime: str, today: date) -> bool:
    found = lifecycle_of(runtimes, runtime)
    return found is not None and date.fromisoformat(found.deprecated) <= today


def blocks_create(runtimes: list[RuntimeLifecycle], runtime: str, today: date) -> bool:
    found = lifecycle_of(runtimes, runtime)
    return found is not None and date.fromisoformat(found.block_create) <= today


def blocked_runtimes(runtimes: list[RuntimeLifecycle], today: date) -> frozenset[str]:
    """The runtimes CreateFunction refuses on `today`."""
    return frozenset(r.name for r in runtimes if date.fromisoformat(r.block_create) <= today)


def describe(found: RuntimeLifecycle) -> str:
    update = f", updates blocked from {found.block_update}" if found.block_update else ""
    return (
        f"{found.name}: deprecated {found.deprecated}, creates blocked from "
        f"{found.block_create}{update}"
    )


def restore_runtime(
    runtimes: list[RuntimeLifecycle],
    runtime: str,
    replacements: dict[str, str],
    today: date,
) -> tuple[str, str | None]:
    """(the runtime a restore creates the function on, why it differs or None). Raises
    RuntimeBlocked when creates are blocked and the runbook names no replacement."""
    if not runtime or not blocks_create(runtimes, runtime, today):
        return runtime, None
    replacement = replacements.get(runtime)
    found = lifecycle_of(runtimes, runtime)
    assert found is not None
    if not replacement:
        raise RuntimeBlocked(
            f"{describe(found)}: AWS refuses to create a function on it; name a replacement in "
            f'the restore_functions step (replacement_runtimes = {{ "{runtime}" = "..." }})'
        )
    return replacement, f"{describe(found)}: restored on {replacement}"


class RuntimeBlocked(ValueError):
    """A runtime AWS no longer creates functions on, with no replacement named."""
