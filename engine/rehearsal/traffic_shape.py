"""The rehearsal's traffic shape (embedded world only): how much traffic, cold starts after a
change, and the noise of few requests. Health signals must stay quiet through all three
when nothing is wrong (issue 19, item 4); these let a rehearsal show that they do.

- `traffic`: a factor on the simulator's invocations per minute (0.01: a quiet night);
- `cold_start_factor`: Duration is that many times longer for COLD_START_PLAN_SECONDS after a
  function's configuration changes (a shift's new flags: new execution environments);
- `noise_seed`: when set, Duration wanders as an average of few requests does (about
  NOISE / sqrt(requests)), reproducibly from the seed.

Kept in one SSM parameter of the world, so another process (the CLI, a test) can set it.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

SHAPE_PARAMETER = "/runbook-console/simulator/traffic-shape"
COLD_PARAMETER = "/runbook-console/simulator/cold/{fn}"  # "<revision> <plan seconds since>"
COLD_START_PLAN_SECONDS = 300.0
NOISE = 0.3  # relative spread of one request's duration

ClientFactory = Callable[[str], Any]


@dataclass(frozen=True)
class TrafficShape:
    traffic: float = 1.0
    cold_start_factor: float = 1.0
    noise_seed: int | None = None


def set_traffic_shape(clients: ClientFactory, shape: TrafficShape) -> None:
    if shape.traffic <= 0 or shape.cold_start_factor < 1:
        raise ValueError("traffic must be above 0 and cold_start_factor at least 1")
    clients("ssm").put_parameter(
        Name=SHAPE_PARAMETER, Value=json.dumps(asdict(shape)), Type="String", Overwrite=True
    )


def get_traffic_shape(clients: ClientFactory) -> TrafficShape:
    ssm = clients("ssm")
    try:
        raw = ssm.get_parameter(Name=SHAPE_PARAMETER)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return TrafficShape()
    return TrafficShape(**json.loads(raw))


def since_change(clients: ClientFactory, fn: str, revision: str, plan_seconds: float) -> float:
    """Plan seconds since `fn`'s configuration last changed, before this tick (a revision not
    seen before, or a function first seen, counts from 0); the count moves on by this tick's
    `plan_seconds`."""
    ssm = clients("ssm")
    name = COLD_PARAMETER.format(fn=fn)
    try:
        seen, since = ssm.get_parameter(Name=name)["Parameter"]["Value"].split(" ")
        elapsed = float(since) if seen == revision else 0.0
    except ssm.exceptions.ParameterNotFound:
        elapsed = 0.0  # first seen since the shape was set: as just changed
    value = f"{revision} {elapsed + plan_seconds!r}"
    ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)
    return elapsed


def duration_factor(shape: TrafficShape, fn: str, since: float, requests: int) -> float:
    """Pure: what cold starts and noise do to a tick's average Duration."""
    factor = shape.cold_start_factor if since < COLD_START_PLAN_SECONDS else 1.0
    if shape.noise_seed is not None and requests > 0:
        rng = random.Random(f"{shape.noise_seed}:{fn}:{since}")
        factor *= max(0.1, 1.0 + rng.gauss(0.0, NOISE / math.sqrt(requests)))
    return factor
