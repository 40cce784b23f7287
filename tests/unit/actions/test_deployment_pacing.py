"""API Gateway allows one CreateDeployment per 5 s per account: the next waits out the rest
(engine/actions/cleanup/routes.py, pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.actions.cleanup.routes import DEPLOYMENT_INTERVAL_SECONDS, deployment_wait

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


def test_the_first_deployment_goes_at_once() -> None:
    assert deployment_wait(None, NOW) == 0.0


def test_the_next_waits_out_the_rest_of_the_interval() -> None:
    last = (NOW - timedelta(seconds=2)).isoformat()
    assert deployment_wait(last, NOW) == DEPLOYMENT_INTERVAL_SECONDS - 2
    assert deployment_wait((NOW - timedelta(minutes=3)).isoformat(), NOW) == 0.0


def test_a_clock_that_went_back_never_waits_more_than_one_interval() -> None:
    future = (NOW + timedelta(hours=1)).isoformat()
    assert deployment_wait(future, NOW) == DEPLOYMENT_INTERVAL_SECONDS
