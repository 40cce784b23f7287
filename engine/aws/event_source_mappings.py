"""The settings of a Lambda event source mapping that a re-created one must carry (what
CreateEventSourceMapping takes), and the keys an archive keeps of each mapping."""

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
