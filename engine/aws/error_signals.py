"""What users see fail, from three signals, each a share of its own requests:

- Lambda `Errors` / `Invocations`: exceptions thrown, and nothing else;
- Lambda `Throttles` / (`Invocations` + `Throttles`): calls refused before they ran;
- API Gateway `5XXError` / `Count` for the runbook's API and stage: what clients got, including
  a handler that catches an error and returns a 500 (Lambda counts no error then).

An error trigger or gate reads the worst of them. A signal with fewer requests than the
runbook's `monitoring.min_requests` in the window says nothing yet (a 1-in-3 at 2 a.m. is no
error rate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.aws.metrics import ErrorRate, Window, error_rate, fetch, stat_query
from engine.runbook.model import ApiSpec

APIGW_NAMESPACE = "AWS/ApiGateway"


@dataclass(frozen=True)
class ErrorSignal:
    name: str  # as the operator reads it: "Lambda errors", "API Gateway 5XX", ...
    failed: float
    requests: float

    @property
    def percent(self) -> float:
        return 100.0 * self.failed / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class ErrorReading:
    lambda_rate: ErrorRate
    signals: tuple[ErrorSignal, ...]
    min_requests: int

    @property
    def counted(self) -> tuple[ErrorSignal, ...]:
        """The signals with enough requests to say something."""
        return tuple(s for s in self.signals if s.requests and s.requests >= self.min_requests)

    @property
    def has_data(self) -> bool:
        return bool(self.counted)

    @property
    def worst(self) -> ErrorSignal | None:
        return max(self.counted, key=lambda s: s.percent, default=None)

    @property
    def too_little_traffic(self) -> bool:
        """Requests were seen, but no signal had enough of them."""
        return not self.counted and any(s.requests for s in self.signals)


def signals_of(lam: ErrorRate, api: tuple[float, float] | None, api_name: str) -> list[ErrorSignal]:
    """Pure: the signals from Lambda's sums and the API's (5XX, Count), if it has one."""
    out = [
        ErrorSignal("Lambda errors", lam.errors, lam.invocations),
        ErrorSignal("Lambda throttles", lam.throttles, lam.invocations + lam.throttles),
    ]
    if api is not None:
        out.append(ErrorSignal(f"API Gateway 5XX ({api_name})", api[0], api[1]))
    return out


def api_sums(cw: Any, api: ApiSpec, win: Window) -> tuple[float, float]:
    """(5XXError, Count) summed over the window. REST API metrics are dimensioned by the API's
    name and stage (not its id): the stage tells a prod API from a staging copy of one name."""
    dims = [{"Name": "ApiName", "Value": api.name}, {"Name": "Stage", "Value": api.stage}]
    queries = [
        stat_query(
            qid,
            {"Namespace": APIGW_NAMESPACE, "MetricName": name, "Dimensions": dims},
            "Sum",
            win.period,
        )
        for qid, name in (("x", "5XXError"), ("c", "Count"))
    ]
    values = fetch(cw, queries, win)
    return sum(values.get("x", [])), sum(values.get("c", []))


def read_errors(
    cw: Any, functions: list[str], api: ApiSpec | None, win: Window, min_requests: int
) -> ErrorReading:
    lam = error_rate(cw, functions, win)
    sums = api_sums(cw, api, win) if api is not None else None
    signals = signals_of(lam, sums, api.name if api else "")
    return ErrorReading(lam, tuple(signals), min_requests)
