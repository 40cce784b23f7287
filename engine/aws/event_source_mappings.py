"""The settings of a Lambda event source mapping that a re-created one must carry (what
CreateEventSourceMapping takes; UpdateEventSourceMapping takes them all but StartingPosition),
the keys an archive keeps of each mapping, and whether an archived one comes back Enabled."""

from __future__ import annotations

MAPPING_SETTINGS = (
    "BatchSize",
    "StartingPosition",
    "MaximumBatchingWindowInSeconds",
    "ParallelizationFactor",
    "MaximumRetryAttempts",
    "BisectBatchOnFunctionError",
    "MaximumRecordAgeInSeconds",
    "TumblingWindowInSeconds",
    "DestinationConfig",
    "FilterCriteria",
    "FunctionResponseTypes",
)
# what identifies a mapping and its state, then its settings
MAPPING_KEYS = ("UUID", "EventSourceArn", "FunctionArn", "State", *MAPPING_SETTINGS)

# an archived State that a mapping comes back Enabled from (a transition towards enabled)
ENABLED_STATES = ("Enabled", "Enabling", "Updating")


def archived_enabled(state: str | None) -> bool:
    """Whether a mapping archived in `state` is restored Enabled (no State: Enabled)."""
    return (state or "Enabled") in ENABLED_STATES
