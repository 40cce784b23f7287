"""What users see fail (engine/aws/error_signals.py, pure): the worst of three signals, each
over its own requests, and only once it has enough of them."""

from __future__ import annotations

from engine.aws.error_signals import ErrorReading, signals_of
from engine.aws.metrics import ErrorRate


def _reading(errors: float, invocations: float, throttles: float, api, min_requests=20):
    lam = ErrorRate(errors, invocations, {}, throttles)
    return ErrorReading(lam, tuple(signals_of(lam, api, "expenses-api")), min_requests)


def test_a_handler_that_returns_500_is_seen_by_the_api_only() -> None:
    reading = _reading(0, 1000, 0, api=(50, 1000))
    assert reading.worst is not None
    assert reading.worst.name == "API Gateway 5XX (expenses-api)"
    assert reading.worst.percent == 5.0


def test_throttles_count_against_all_the_calls_made() -> None:
    reading = _reading(1, 900, 100, api=None)
    assert reading.worst is not None and reading.worst.name == "Lambda throttles"
    assert reading.worst.percent == 10.0  # 100 of 1000 calls, though only 900 ran


def test_thrown_errors_are_lambdas() -> None:
    reading = _reading(30, 1000, 0, api=(30, 1000))
    assert reading.worst is not None and reading.worst.percent == 3.0


def test_too_few_requests_say_nothing_yet() -> None:
    reading = _reading(1, 3, 0, api=(1, 3))  # one in three, at 2 a.m.
    assert reading.worst is None and not reading.has_data and reading.too_little_traffic
    silent = _reading(0, 0, 0, api=(0, 0))
    assert silent.worst is None and not silent.too_little_traffic  # no data at all


def test_a_quiet_signal_does_not_hide_a_busy_one() -> None:
    reading = _reading(0, 5, 0, api=(40, 2000), min_requests=20)
    assert [s.name for s in reading.counted] == ["API Gateway 5XX (expenses-api)"]
    assert reading.worst is not None and reading.worst.percent == 2.0
