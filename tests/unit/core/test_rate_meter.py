"""Items/s and ETA from progress samples (engine/context.py RateMeter): no rate from a span too
short to mean anything (issue 20, item 18: 20,510/s just after a resume)."""

from __future__ import annotations

from engine.core.context import RateMeter, eta_seconds


def test_a_resume_burst_shows_no_rate_until_the_span_means_something() -> None:
    meter = RateMeter()
    assert meter.add(100.0, 5_000) is None  # resumed at 5,000 items
    assert meter.add(100.005, 5_100) is None  # the first page lands 5 ms later: no 20,000/s
    assert meter.add(100.5, 5_200) is None
    assert meter.add(101.0, 5_300) == 300.0  # 300 items over 1 s


def test_the_rate_follows_a_sliding_window() -> None:
    meter = RateMeter(window_seconds=10.0)
    for second in range(0, 31):
        rate = meter.add(float(second), second * (10 if second <= 20 else 100))
    assert rate is not None and rate > 50  # the last 10 s, not the whole run's average
    assert eta_seconds(100, 1_100, 100.0) == 10.0
    assert eta_seconds(100, None, 100.0) is None and eta_seconds(100, 200, None) is None
