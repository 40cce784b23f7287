"""botocore's retry backoff, made interruptible: a stop ends the wait between attempts.

botocore sleeps between retries with `time.sleep` (up to 20 s per attempt in standard and
adaptive mode), so a stop during a throttling storm would wait out the backoff. Here the
client's standard retry handler is rebuilt as botocore builds it and wrapped: its decision
and delay are kept, and the delay is waited on the stop event; a stop raises Interrupted
(the attempt's error is not reported as the step's failure).

An answer cut short (engine/aws/complete_responses.py) is retried here too, as a dropped
connection would be: botocore's own checker does not know it. A call AWS cannot repeat safely
(engine/aws/resend.py) is not retried once its request may have been applied.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

from botocore.retries import standard

from engine.aws.complete_responses import is_incomplete
from engine.aws.resend import resend_unsafe
from engine.core.clock import Interrupted

MAX_BACKOFF_SECONDS = 20.0  # botocore's standard mode caps its backoff here too


def interruptible_retries(client: Any, stop: Callable[[], threading.Event]) -> Any:
    """Wrap `client`'s retry handler so its backoff waits on `stop()`; returns the client.
    Only standard/adaptive retry modes (the engine's config) are wrapped."""
    mode = client.meta.config.retries.get("mode") if client.meta.config.retries else None
    if mode not in ("standard", "adaptive"):
        return client
    service = client.meta.service_model.service_id.hyphenize()
    event, unique_id = f"needs-retry.{service}", f"retry-config-{service}"
    client.meta.events.unregister(event, unique_id=unique_id)
    max_attempts = client.meta.config.retries.get("total_max_attempts")
    handler = standard.register_retry_handler(client, max_attempts=max_attempts)
    client.meta.events.unregister(event, unique_id=unique_id)  # ours takes its place

    def needs_retry(**kwargs: Any) -> Any:
        if resend_unsafe(kwargs):
            return None  # its caller looks for what it made (engine/aws/resend.py)
        delay = handler.needs_retry(**kwargs)
        if delay is None:
            delay = _incomplete_delay(kwargs, max_attempts or standard.DEFAULT_MAX_ATTEMPTS)
        if not delay:
            return delay  # no retry (None/False), or retry at once (0)
        if stop().wait(delay):
            raise Interrupted()
        return 0  # waited here already: botocore sleeps 0

    client.meta.events.register(event, needs_retry, unique_id=unique_id)
    return client


def _incomplete_delay(kwargs: dict[str, Any], max_attempts: int) -> float | None:
    """A jittered backoff for an answer cut short, while attempts remain; else None."""
    response = kwargs.get("response")
    parsed = response[1] if isinstance(response, tuple) and len(response) == 2 else None
    attempts = int(kwargs.get("attempts", 1))
    if not is_incomplete(parsed) or attempts >= max_attempts:
        return None
    return random.uniform(0, min(MAX_BACKOFF_SECONDS, 2**attempts))
