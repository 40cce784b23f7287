"""Embedded-only traffic simulator: plausible Lambda and dual-write metrics while flags are on.

moto synthesises no AWS/* metrics, so in the rehearsal world watch windows and gate checks
would see nothing. Each `publish_tick` puts, per flagged function, Invocations / Errors /
Duration into AWS/Lambda, and the dual-write success/failure counts into the runbook's custom
namespace while DUAL_WRITE_ENABLED is on, and the runbook API's Count / 5XXError into
AWS/ApiGateway. Knobs live in SSM so the CLI can turn them from another process during a
rehearsal: the injected error rate (percent), who sees those errors (thrown: Lambda's Errors and
the API's 5XX; or "api": a handler that returns a 500, which only the API's 5XX shows) and a
latency factor.

Never used against real AWS: only the embedded world (engine/rehearsal/world.py) ticks it
(AWS rejects AWS/* namespaces).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from engine.aws.error_signals import APIGW_NAMESPACE
from engine.aws.metrics import LAMBDA_NAMESPACE, dual_write_metric
from engine.rehearsal.traffic_shape import (
    TrafficShape,
    duration_factor,
    get_traffic_shape,
    since_change,
)
from engine.runbook.model import Runbook

ERROR_RATE_PARAMETER = "/runbook-console/simulator/error-rate"
LATENCY_FACTOR_PARAMETER = "/runbook-console/simulator/latency-factor"
ERRORS_SEEN_BY_PARAMETER = "/runbook-console/simulator/errors-seen-by"
ERRORS_SEEN_BY = ("lambda", "api")  # thrown (both see it), or returned as a 500 (the API only)
INVOCATIONS_PER_MINUTE = 600  # per function
WRITE_SHARE = 0.4  # share of invocations that write (and so dual-write)
BASE_LATENCY_MS = 80.0
COMPANY_READ_LATENCY_FACTOR = 0.95  # company-scoped reads are a query, not a scan

ClientFactory = Callable[[str], Any]


def _put(clients: ClientFactory, name: str, value: float) -> None:
    clients("ssm").put_parameter(Name=name, Value=repr(float(value)), Type="String", Overwrite=True)


def _get(clients: ClientFactory, name: str, default: float) -> float:
    ssm = clients("ssm")
    try:
        return float(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        return default


def set_error_rate(clients: ClientFactory, percent: float) -> None:
    """Inject `percent` % errors into every simulated function (0 turns injection off)."""
    if not 0 <= percent <= 100:
        raise ValueError("error rate must be between 0 and 100 percent")
    _put(clients, ERROR_RATE_PARAMETER, percent)


def get_error_rate(clients: ClientFactory) -> float:
    return _get(clients, ERROR_RATE_PARAMETER, 0.0)


def set_errors_seen_by(clients: ClientFactory, seen_by: str) -> None:
    if seen_by not in ERRORS_SEEN_BY:
        raise ValueError(f"errors are seen by one of {', '.join(ERRORS_SEEN_BY)}")
    clients("ssm").put_parameter(
        Name=ERRORS_SEEN_BY_PARAMETER, Value=seen_by, Type="String", Overwrite=True
    )


def get_errors_seen_by(clients: ClientFactory) -> str:
    ssm = clients("ssm")
    try:
        return str(ssm.get_parameter(Name=ERRORS_SEEN_BY_PARAMETER)["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        return "lambda"


def set_latency_factor(clients: ClientFactory, factor: float) -> None:
    """Multiply simulated Duration by `factor` (1.0 = normal; 1.5 trips a +20% trigger)."""
    if factor <= 0:
        raise ValueError("latency factor must be positive")
    _put(clients, LATENCY_FACTOR_PARAMETER, factor)


def get_latency_factor(clients: ClientFactory) -> float:
    return _get(clients, LATENCY_FACTOR_PARAMETER, 1.0)


def _is_on(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes", "on")


def _base_latency(fn: str) -> float:
    """A stable per-function latency, 80-120 ms."""
    return BASE_LATENCY_MS + zlib.crc32(fn.encode()) % 40


def publish_tick(
    clients: ClientFactory,
    rb: Runbook,
    plan_seconds: float = 60.0,
    functions: list[str] | None = None,
) -> dict[str, float]:
    """Publish one tick of traffic for `plan_seconds` of plan time; returns what was published.

    A function is "flagged" when any of the runbook's flag variables is set on it. Flag values
    are read; no other environment variable is looked at.
    """
    lam = clients("lambda")
    cw = clients("cloudwatch")
    flags = rb.flags
    error_pct = get_error_rate(clients)
    thrown = get_errors_seen_by(clients) == "lambda"
    factor = get_latency_factor(clients)
    shape = get_traffic_shape(clients)
    minutes = max(plan_seconds, 1.0) / 60.0
    now = datetime.now(UTC)
    lambda_data: list[dict[str, Any]] = []
    writes = 0.0
    failed_writes = 0.0
    total_inv = 0.0
    total_err = 0.0
    for fn in functions if functions is not None else flags.functions:
        try:
            config = lam.get_function_configuration(FunctionName=fn)
        except lam.exceptions.ResourceNotFoundException:
            continue
        variables = config.get("Environment", {}).get("Variables", {})
        if not any(name in variables for name in flags.names()):
            continue
        invocations = round(INVOCATIONS_PER_MINUTE * minutes * shape.traffic)
        errors = round(invocations * error_pct / 100.0)
        latency = _base_latency(fn) * factor
        if shape != TrafficShape():
            since = since_change(clients, fn, config.get("RevisionId", ""), plan_seconds)
            latency *= duration_factor(shape, fn, since, invocations)
        if _is_on(variables.get(flags.read_company_scoped)):
            share = float(variables.get(flags.read_percent, "100") or 0) / 100.0
            latency *= 1 - share * (1 - COMPANY_READ_LATENCY_FACTOR)
        dims = [{"Name": "FunctionName", "Value": fn}]
        lambda_data += [
            {
                "MetricName": "Invocations",
                "Dimensions": dims,
                "Value": invocations,
                "Unit": "Count",
                "Timestamp": now,
            },
            {
                "MetricName": "Errors",
                "Dimensions": dims,
                "Value": errors if thrown else 0,  # a returned 500 is no Lambda error
                "Unit": "Count",
                "Timestamp": now,
            },
            {
                "MetricName": "Throttles",
                "Dimensions": dims,
                "Value": 0,
                "Unit": "Count",
                "Timestamp": now,
            },
        ]
        if invocations:  # no request, no duration
            lambda_data.append(
                {
                    "MetricName": "Duration",
                    "Dimensions": dims,
                    "Value": round(latency, 2),
                    "Unit": "Milliseconds",
                    "Timestamp": now,
                }
            )
        total_inv += invocations
        total_err += errors
        if _is_on(variables.get(flags.dual_write)):
            w = round(invocations * WRITE_SHARE)
            writes += w
            failed_writes += round(w * error_pct / 100.0)
    for i in range(0, len(lambda_data), 500):
        cw.put_metric_data(Namespace=LAMBDA_NAMESPACE, MetricData=lambda_data[i : i + 500])
    api = rb.inventory.api
    if api is not None and total_inv:  # the flagged functions serve the API's routes
        dims = [{"Name": "ApiName", "Value": api.name}, {"Name": "Stage", "Value": api.stage}]
        cw.put_metric_data(
            Namespace=APIGW_NAMESPACE,
            MetricData=[
                {
                    "MetricName": name,
                    "Dimensions": dims,
                    "Value": value,
                    "Unit": "Count",
                    "Timestamp": now,
                }
                for name, value in (("Count", total_inv), ("5XXError", total_err))
            ],
        )
    if writes:
        mon = rb.monitoring
        data = []
        for name, value in (
            (mon.dual_write_success_metric, writes - failed_writes),
            (mon.dual_write_failure_metric, failed_writes),
        ):
            metric = dual_write_metric(mon, name)  # as the application publishes it
            datum = {"MetricName": name, "Value": value, "Unit": "Count", "Timestamp": now}
            if "Dimensions" in metric:
                datum["Dimensions"] = metric["Dimensions"]
            data.append(datum)
        cw.put_metric_data(Namespace=mon.namespace, MetricData=data)
    return {
        "invocations": total_inv,
        "errors": total_err,
        "writes": writes,
        "failed_writes": failed_writes,
    }
